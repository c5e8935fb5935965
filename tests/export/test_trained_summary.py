"""The card's summary says what training trained, and the service serves it (issue 12, point 3).

A network trained from scratch (``train``, ``finetune --mode finetune``) has every parameter
trainable; after ``finetune --mode feature-extract`` only the new head is. The export freezes its
serving copy, which is not what the summary must report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from export.jobs import job_from_checkpoint
from export.pipeline import export_and_publish
from repository import Repository, SummaryRecord
from tests.conftest import quick_options
from tests.service.live import LiveServer, make_settings
from training.train import FinetuneConfig, finetune

HEAD = "classifier.4"
HEAD_PARAMS = 84 * 5 + 5  # LeNet-5's last layer, 84 features -> digits 5-9


@pytest.fixture(scope="module")
def feature_extracted(quick_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick LeNet-5, feature-extracted onto digits 5-9 and published into a repository of its own."""
    root = tmp_path_factory.mktemp("feature-extract")
    source = quick_repository.parent / "checkpoints" / "quick" / "lenet5" / "checkpoint.pt"
    config = FinetuneConfig(
        model="lenet5",
        data="digits:5-9:10",
        out=root / "run",
        source=source,
        mode="feature-extract",
        epochs=1,
        quiet=True,
        threads=1,
    )
    checkpoint = finetune(config).checkpoint
    options = quick_options(root / "model_repository", root / "runs", models=["lenet5"])
    export_and_publish(job_from_checkpoint(checkpoint, options), Repository(options.repository), options)
    return options.repository


def _summary(repository: Path) -> SummaryRecord:
    return Repository(repository).load_card("lenet5").summary


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_a_trained_network_has_every_parameter_trainable(quick_repository: Path, name: str) -> None:
    summary = Repository(quick_repository).load_card(name).summary
    assert summary.total_params > 0
    assert (summary.trainable_params, summary.non_trainable_params) == (summary.total_params, 0)
    assert all(layer.trainable_params == layer.params for layer in summary.layers)


def test_feature_extraction_has_the_head_alone_trainable(feature_extracted: Path) -> None:
    summary = _summary(feature_extracted)
    assert summary.trainable_params == HEAD_PARAMS
    assert summary.non_trainable_params == summary.total_params - HEAD_PARAMS > 0
    for layer in summary.layers:
        assert layer.trainable_params == (layer.params if layer.name == HEAD else 0), layer.name


def test_the_service_serves_the_split(feature_extracted: Path) -> None:
    total = _summary(feature_extracted).total_params
    live = LiveServer(make_settings(feature_extracted)).start()
    try:
        with live.client() as client:
            served = client.get("/models/lenet5/summary")
            assert served.status_code == 200, served.text
            body = served.json()
            assert (body["trainable_params"], body["non_trainable_params"]) == (HEAD_PARAMS, total - HEAD_PARAMS)
            text = client.get("/models/lenet5/summary", params={"format": "text"}).text
    finally:
        live.stop()
    assert f"Trainable params: {HEAD_PARAMS:,}\n" in text
    assert f"Non-trainable params: {total - HEAD_PARAMS:,}\n" in text
