"""ONNX Runtime's usage telemetry is off wherever the service runs (service/__init__.py).

Its Linux wheels (1.29 and later) look up mobile.events.data.microsoft.com about ten seconds after
start unless ``ORT_DISABLE_TELEMETRY=1`` is set before onnxruntime is imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    return {**env, **extra}


@pytest.mark.parametrize(("given", "seen"), [(None, "1"), ("0", "0")], ids=["default-off", "explicit-choice-kept"])
def test_importing_the_service_turns_telemetry_off_unless_told_otherwise(given: str | None, seen: str) -> None:
    env = _environment(**({"ORT_DISABLE_TELEMETRY": given} if given is not None else {}))
    code = "import service, os; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == seen


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to see the process's network calls")
def test_a_session_sends_nothing_in_its_first_seconds(tiny_repository: Path, tmp_path: Path) -> None:
    model = next(tiny_repository.glob("lenet5/*/model.onnx"))
    code = (
        "import time; from pathlib import Path; from service.core.runtime import RuntimeOptions, open_session; "
        f"open_session(Path({str(model)!r}), RuntimeOptions(providers=('CPUExecutionProvider',))); time.sleep(14)"
    )
    trace = tmp_path / "strace.txt"
    command = ["strace", "-f", "-e", "trace=connect,sendto", "-o", str(trace), sys.executable, "-c", code]
    subprocess.run(command, env=_environment(), cwd=ROOT, check=True, capture_output=True, timeout=120)
    calls = trace.read_text(errors="replace")
    assert "AF_INET" not in calls and "mobile" not in calls, calls[-2000:]
