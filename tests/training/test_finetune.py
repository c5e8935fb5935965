"""Transfer learning: the three modes, frozen layers that really stay put, torchvision sources."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models
from training.train import FinetuneConfig, finetune, train
from training.weights import WeightsError, load_checkpoint

from .conftest import quick_config
from .test_weights import torchvision_state_dict

TARGET = "digits:5-9:10"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """LeNet-5 trained on digits 0-4: the source task."""
    out = tmp_path_factory.mktemp("source")
    return train(quick_config(out, data="digits:0-4", epochs=2, limit_train=None)).checkpoint


def _finetune(out: Path, mode: str, source: Path | None, **changes):
    options = {
        "model": "lenet5",
        "data": TARGET,
        "out": out,
        "source": source,
        "mode": mode,
        "epochs": 3,
        "quiet": True,
    }
    options.update(changes)
    return finetune(FinetuneConfig(**options))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[1].state_dict


def test_feature_extract_trains_only_the_new_head(source: Path, tmp_path: Path):
    result = _finetune(tmp_path, "feature-extract", source)
    before, after = _weights(source), _weights(result.checkpoint)
    head = "classifier.4."
    for name, tensor in after.items():
        if name.startswith(head):
            assert tensor.shape[0] == 5  # the new head, for digits 5-9
        else:
            assert torch.equal(tensor, before[name]), f"{name} changed although frozen"
    assert not torch.equal(after["classifier.4.bias"], torch.zeros(5))
    m = result.metrics
    assert m["mode"] == "feature-extract" and m["trainable_params"] == 84 * 5 + 5
    assert m["labels"] == ["5", "6", "7", "8", "9"] and m["split_sizes"]["train"] == 50
    model, ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.meta.preprocessing == load_checkpoint(source)[1].meta.preprocessing  # the source's statistics
    assert ckpt.meta.model_options["num_classes"] == 5 and model.info.num_classes == 5
    # The checkpoint says what was frozen (the card's summary reports it): every parameter but the head's.
    assert ckpt.meta.frozen == [name for name, _ in model.named_parameters() if not name.startswith(head)]


def test_finetune_moves_everything_and_scratch_starts_afresh(source: Path, tmp_path: Path):
    before = _weights(source)
    tuned = _finetune(tmp_path / "finetune", "finetune", source)
    after = _weights(tuned.checkpoint)
    assert all(not torch.equal(after[k], before[k]) for k in before if not k.startswith("classifier.4."))
    assert tuned.metrics["trainable_params"] == tuned.metrics["params"]
    assert load_checkpoint(tuned.checkpoint)[1].meta.frozen == []
    lrs = {h["lr"] for h in tuned.metrics["history"]}
    assert lrs  # recorded

    scratch = _finetune(tmp_path / "scratch", "scratch", None)
    assert scratch.metrics["source"] is None and scratch.metrics["mode"] == "scratch"
    fresh = _weights(scratch.checkpoint)
    assert not torch.equal(fresh["features.0.weight"], before["features.0.weight"])


@pytest.mark.skipif("resnet18" not in models.list_models(), reason="resnet18 not registered")
def test_feature_extract_from_a_torchvision_file_keeps_batchnorm_statistics(tmp_path: Path):
    path = tmp_path / "resnet18.pth"
    state = torchvision_state_dict("resnet18")
    torch.save(state, path)
    result = finetune(
        FinetuneConfig(
            model="resnet18",
            data=TARGET,
            out=tmp_path / "out",
            source=path,
            mode="feature-extract",
            epochs=1,
            image_size=32,
            quiet=True,
        )
    )
    after = _weights(result.checkpoint)
    changed = [k for k in after if not k.startswith("fc.") and not torch.equal(after[k], state[k].to(after[k].dtype))]
    assert changed == []  # weights and running statistics of the frozen backbone
    assert after["fc.weight"].shape == (5, 512)
    m = result.metrics
    assert m["source_kind"] == "torchvision" and m["trainable_params"] == 512 * 5 + 5
    ckpt = load_checkpoint(result.checkpoint)[1]
    assert ckpt.meta.preprocessing.mean == models.get_model_info("resnet18").mean  # ImageNet statistics


def test_finetune_errors_say_what_to_do(source: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="needs --from"):
        _finetune(tmp_path, "finetune", None)
    with pytest.raises(WeightsError, match="holds lenet5 weights, not resnet18; run 'finetune lenet5'"):
        finetune(FinetuneConfig(model="resnet18", data=TARGET, out=tmp_path, source=source, mode="finetune"))
    with pytest.raises(WeightsError, match="no such file"):
        _finetune(tmp_path, "finetune", tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="mode must be one of"):
        _finetune(tmp_path, "linear-probe", source)
