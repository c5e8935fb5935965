"""The contract stays torch-free at run time, not only in its import statements (import-linter checks those).

A dependency of a dependency could still pull torch, ONNX or numpy in: each check runs in a fresh
interpreter and looks at ``sys.modules`` afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repository.cards import write_model

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("torch", "torchvision", "onnx", "onnxruntime", "numpy")

# Runs a snippet, then prints the top-level packages of sys.modules that are forbidden.
PROBE = """
import json, runpy, sys
{snippet}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({forbidden!r}))))
"""

IMPORT_ALL = """
import repository, repository.card, repository.publish, repository.store, repository.summary, repository.triton
"""

# ``python -m repository check DIR``, run the way ``-m`` runs it, in this interpreter.
RUN_CHECK = """
sys.argv = ["repository", "check", {root!r}]
try:
    runpy.run_module("repository", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    assert stop.code == 0, stop.code
"""


def _forbidden_after(snippet: str) -> list[str]:
    code = PROBE.format(snippet=snippet, forbidden=FORBIDDEN)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_probe_sees_an_import() -> None:
    if importlib.util.find_spec("numpy") is None:  # found, not imported: this process stays numpy-free too
        pytest.skip("numpy is not installed")
    assert _forbidden_after("import numpy") == ["numpy"]


def test_importing_the_package_imports_no_torch_onnx_or_numpy() -> None:
    assert _forbidden_after(IMPORT_ALL) == []


def test_the_check_command_imports_no_torch_onnx_or_numpy(tmp_path: Path) -> None:
    write_model(tmp_path)
    assert _forbidden_after(RUN_CHECK.format(root=str(tmp_path))) == []
