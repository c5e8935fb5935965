"""Weights in and out: torchvision-format state_dicts, checkpoints, heads, freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models
from tests.reference import torchvision_layouts
from training.data import Preprocessing
from training.recipes import Recipe
from training.weights import (
    CheckpointMeta,
    WeightsError,
    freeze_backbone,
    load_checkpoint,
    load_state_file,
    load_torchvision_weights,
    param_groups,
    replace_head,
    restore_trainable,
    save_checkpoint,
)


def torchvision_state_dict(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict with torchvision's exact names and shapes for ``arch`` (random values)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in torchvision_layouts()[arch]["state_dict"].items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(0)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=g) + 0.5
        else:
            state[name] = torch.randn(shape, generator=g) * 0.05
    return state


@pytest.fixture(scope="module")
def resnet18_pth(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tv") / "resnet18-torchvision.pth"
    torch.save(torchvision_state_dict("resnet18"), path)
    return path


def test_loads_a_torchvision_state_dict_strictly(resnet18_pth: Path):
    model = load_torchvision_weights(models.create_model("resnet18"), resnet18_pth)
    expected = torch.load(resnet18_pth, weights_only=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name].to(tensor.dtype)), name


def test_wrong_architecture_lists_keys_and_names_the_right_one(resnet18_pth: Path):
    with pytest.raises(WeightsError) as err:
        load_torchvision_weights(models.create_model("resnet34"), resnet18_pth)
    message = str(err.value)
    assert "does not fit resnet34" in message
    assert "missing keys: layer1.2.conv1.weight" in message
    assert "different architecture? It fits: resnet18" in message


def test_other_head_size_points_at_head_replacement(resnet18_pth: Path):
    with pytest.raises(
        WeightsError, match=r"shape mismatches: fc.weight: file \(1000, 512\) vs model \(10, 512\)"
    ) as err:
        load_torchvision_weights(models.create_model("resnet18", num_classes=10), resnet18_pth)
    assert "only the classifier differs" in str(err.value)


def test_state_file_unwrapping_and_bad_files(tmp_path: Path):
    state = models.create_model("lenet5").state_dict()
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, wrapped)
    assert load_state_file(wrapped).keys() == state.keys()

    (tmp_path / "garbage.pth").write_bytes(b"\x00not a torch file")
    with pytest.raises(WeightsError, match=r"cannot read .*garbage\.pth as PyTorch weights"):
        load_state_file(tmp_path / "garbage.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="does not hold a state_dict"):
        load_state_file(tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="does not exist"):
        load_state_file(tmp_path / "missing.pth")


def test_replace_head_freeze_and_param_groups():
    model = models.create_model("resnet18", num_classes=1000)
    replace_head(model, 5)
    assert model.fc.out_features == 5 and model.info.num_classes == 5
    trainable = freeze_backbone(model)
    assert trainable == ["fc.weight", "fc.bias"]
    groups = param_groups(model, lr=0.1, weight_decay=1e-4, backbone_lr_scale=0.1)
    assert [g["name"] for g in groups] == ["head_no_decay", "head"]

    for p in model.parameters():
        p.requires_grad_(True)
    groups = {g["name"]: g for g in param_groups(model, lr=0.1, weight_decay=1e-4, backbone_lr_scale=0.1)}
    assert groups["backbone"]["lr"] == pytest.approx(0.01) and groups["head"]["lr"] == 0.1
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0  # biases and BN weights
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


@pytest.mark.skipif("googlenet" not in models.list_models(), reason="googlenet not registered")
def test_replace_head_drops_googlenet_aux_heads():
    model = models.create_model("googlenet", aux_logits=True)
    replace_head(model, 3)
    assert model.aux1 is None and model.aux2 is None and model.fc.out_features == 3


def test_checkpoint_round_trip(tmp_path: Path):
    model = models.create_model("lenet5", num_classes=4)
    meta = CheckpointMeta(
        model="lenet5",
        model_options={"num_classes": 4, "in_channels": 1},
        preprocessing=Preprocessing(32, "L", (0.3,), (0.3,), resize="stretch", crop_pct=1.0),
        labels=["a", "b", "c", "d"],
        recipe=Recipe(epochs=2, model_options={"dropout": 0.1}),
        metrics={"test_top1": 99.0, "version": torch.__version__},
        epoch=2,
        dataset="digits:0-3",
    )
    assert CheckpointMeta.from_dict(meta.to_dict()) == meta
    path = save_checkpoint(tmp_path / "c.pt", model, meta)
    loaded, ckpt = load_checkpoint(path)
    assert ckpt.meta.labels == ["a", "b", "c", "d"] and ckpt.meta.recipe.options == {"dropout": 0.1}
    assert not loaded.training
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(loaded(x), model.eval()(x))

    newer = meta.to_dict() | {"format_version": 99}
    with pytest.raises(WeightsError, match="newer than this code reads"):
        CheckpointMeta.from_dict(newer)


def _meta(frozen: list[str] | None, mode: str | None) -> CheckpointMeta:
    return CheckpointMeta(
        model="lenet5",
        model_options={"num_classes": 5, "in_channels": 1},
        preprocessing=Preprocessing(32, "L", (0.3,), (0.3,)),
        labels=list("abcde"),
        recipe=Recipe(),
        metrics={} if mode is None else {"mode": mode},
        frozen=frozen,
    )


def _trainable(model: torch.nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def test_frozen_parameters_round_trip_and_restore(tmp_path: Path):
    model = models.create_model("lenet5", num_classes=5)
    backbone = [name for name, _ in model.named_parameters() if not name.startswith("classifier.4.")]
    meta = _meta(backbone, "feature-extract")
    assert CheckpointMeta.from_dict(meta.to_dict()) == meta
    loaded, ckpt = load_checkpoint(save_checkpoint(tmp_path / "c.pt", model, meta))
    assert _trainable(loaded) == _trainable(models.create_model("lenet5")), "loading alone thaws everything"
    assert _trainable(restore_trainable(loaded, ckpt.meta)) == ["classifier.4.weight", "classifier.4.bias"]
    assert _trainable(restore_trainable(loaded, _meta([], "feature-extract"))) == _trainable(
        models.create_model("lenet5")
    ), "what was recorded wins over the mode"


@pytest.mark.parametrize(
    ("mode", "head_only"),
    [("feature-extract", True), ("finetune", False), ("scratch", False), ("train", False), (None, False)],
)
def test_checkpoints_written_before_the_record_derive_it_from_the_mode(mode: str | None, head_only: bool):
    meta = _meta(None, mode)
    assert "frozen" not in meta.to_dict() and CheckpointMeta.from_dict(meta.to_dict()).frozen is None
    model = models.create_model("lenet5", num_classes=5)
    for p in model.parameters():
        p.requires_grad_(False)
    everything = [name for name, _ in model.named_parameters()]
    expected = ["classifier.4.weight", "classifier.4.bias"] if head_only else everything
    assert _trainable(restore_trainable(model, meta)) == expected
