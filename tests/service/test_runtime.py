"""Provider selection (a pure function: tested for GPU machines without one) and session checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repository import Repository, TensorSpec
from service.core.errors import LoadError
from service.core.runtime import CPU, RuntimeOptions, open_session, select_providers, session_options

pytestmark = pytest.mark.xdist_group("service")

CUDA, TRT, AZURE = "CUDAExecutionProvider", "TensorrtExecutionProvider", "AzureExecutionProvider"


@pytest.mark.parametrize(
    ("requested", "available", "chosen"),
    [
        ([CUDA, CPU], [AZURE, CPU], [CPU]),  # CPU-only onnxruntime: degrade
        ([CUDA, CPU], [TRT, CUDA, CPU], [CUDA, CPU]),  # onnxruntime-gpu
        ([TRT, CUDA], [TRT, CUDA, CPU], [TRT, CUDA, CPU]),  # CPU appended as the last resort
        ([CUDA], [CPU], [CPU]),
        ([CPU, CUDA], [CUDA, CPU], [CPU, CUDA]),  # the requested order is kept
        ([CUDA, CUDA, CPU], [CUDA, CPU], [CUDA, CPU]),
        (["NoSuchExecutionProvider"], [CPU], [CPU]),
    ],
)
def test_select_providers(requested: list[str], available: list[str], chosen: list[str]) -> None:
    assert select_providers(requested, available) == chosen


def test_session_reports_the_provider_it_runs_on(tiny_repository: Path) -> None:
    path = Repository(tiny_repository).variant_path("lenet5", 1)
    session = open_session(path, RuntimeOptions((CUDA, CPU), intra_op_threads=1))
    assert session.provider == CPU  # CUDA asked for, not installed here
    card = Repository(tiny_repository).load_card("lenet5")
    session.check(card.inputs, card.outputs)
    logits, probabilities = session.run(np.zeros((3, 1, 32, 32), np.float32))
    assert logits.shape == probabilities.shape == (3, 10)


def test_session_check_names_the_mismatch(tiny_repository: Path) -> None:
    path = Repository(tiny_repository).variant_path("lenet5", 1)
    session = open_session(path, RuntimeOptions((CPU,)))
    with pytest.raises(LoadError, match="no output"):
        session.check([TensorSpec(name="input", shape=[-1, 1, 32, 32])], [TensorSpec(name="scores", shape=[-1, 10])])
    with pytest.raises(LoadError, match="inputs"):
        session.check([TensorSpec(name="pixels", shape=[-1, 1, 32, 32])], [])


def test_unloadable_file_is_a_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(LoadError, match="cannot load"):
        open_session(bad, RuntimeOptions((CUDA, CPU)))


@pytest.mark.parametrize(("spinning", "allow"), [(True, "1"), (False, "0")])
def test_spinning_stops_after_each_run(spinning: bool, allow: str) -> None:
    options = session_options(RuntimeOptions((CPU,), intra_op_threads=2, spinning=spinning))
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == allow
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert options.intra_op_num_threads == 2
