"""Settings come from CNNSERVE_* variables, with clear errors; the CLI overrides them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.__main__ import main
from service.settings import Settings

pytestmark = pytest.mark.xdist_group("service")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CNNSERVE_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = Settings()
    assert (s.host, s.port, s.repository) == ("127.0.0.1", 8000, Path("model_repository"))
    assert s.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert s.api_key is None and s.poll_interval_s > 0 and s.version_policy == "latest"


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "CNNSERVE_REPOSITORY": "/srv/models",
        "CNNSERVE_HOST": "0.0.0.0",
        "CNNSERVE_PORT": "9000",
        "CNNSERVE_PROVIDERS": "cuda, CPUExecutionProvider",
        "CNNSERVE_INTRA_OP_THREADS": "2",
        "CNNSERVE_MAX_QUEUE_SIZE": "8",
        "CNNSERVE_MAX_BODY_BYTES": "4096",
        "CNNSERVE_MAX_IMAGE_PIXELS": "1000",
        "CNNSERVE_API_KEY": "s3cret",
        "CNNSERVE_POLL_INTERVAL_S": "0.5",
        "CNNSERVE_VARIANTS": "fp32,int8",
        "CNNSERVE_MAX_QUEUE_DELAY_MICROSECONDS": "0",
        "CNNSERVE_BATCH_REGROUP": "false",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.repository == Path("/srv/models") and (s.host, s.port) == ("0.0.0.0", 9000)
    assert s.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert (s.intra_op_threads, s.max_queue_size, s.max_body_bytes, s.max_image_pixels) == (2, 8, 4096, 1000)
    assert s.api_key is not None and s.api_key.get_secret_value() == "s3cret"
    assert s.poll_interval_s == 0.5 and s.variants == ["fp32", "int8"] and s.max_queue_delay_microseconds == 0
    assert s.batch_regroup is False and Settings.model_fields["batch_regroup"].default is True
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CNNSERVE_PORT", "http"),
        ("CNNSERVE_PORT", "70000"),
        ("CNNSERVE_MAX_QUEUE_SIZE", "0"),
        ("CNNSERVE_PROVIDERS", " , "),
        ("CNNSERVE_VARIANTS", "fp64"),
        ("CNNSERVE_VERSION_POLICY", "newest"),
    ],
)
def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert key.removeprefix("CNNSERVE_").lower() in str(info.value)


def test_empty_api_key_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNSERVE_API_KEY", "")
    assert Settings().api_key is None


def test_cli_rejects_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--port", "99999"])
    assert info.value.code == 2
    assert "port" in capsys.readouterr().err


def test_workers_and_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.workers == 0 and s.intra_op_threads == 0 and s.fast_path  # 0: derived from the usable CPUs
    monkeypatch.setenv("CNNSERVE_WORKERS", "3")
    monkeypatch.setenv("CNNSERVE_FAST_PATH", "false")
    s = Settings()
    assert s.workers == 3 and not s.fast_path
    monkeypatch.setenv("CNNSERVE_WORKERS", "-1")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "workers" in str(info.value)


def test_cli_workers_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--workers", "-2"])
    assert info.value.code == 2
    assert "workers" in capsys.readouterr().err
