"""Training: a short real run that learns, its files, checkpoint/resume, recipes, GoogLeNet's aux heads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import models
from training.data import load_data
from training.loop import _loss, _lr_lambda, evaluate_model
from training.recipes import DEFAULT_SET, RECIPES, Recipe, get_recipe
from training.train import DistEnv, TrainConfig, train
from training.weights import load_checkpoint, read_checkpoint

from .conftest import quick_config


def test_short_run_learns_and_writes_metrics_and_checkpoint(lenet_run):
    m = lenet_run.metrics
    assert m["test_top1"] > 85, m["history"]  # chance is 10 %
    assert m["test_top5"] >= m["test_top1"]
    on_disk = json.loads((lenet_run.out / "metrics.json").read_text())
    for key in ("test_top1", "test_top5", "history", "epochs", "seconds", "dataset", "split_sizes", "image_size"):
        assert key in on_disk, key
    assert on_disk["dataset"] == "digits" and on_disk["image_size"] == 32
    assert on_disk["split_sizes"] == {"train": 1259, "val": 179, "test": 359}
    assert [h["epoch"] for h in on_disk["history"]] == [1, 2, 3]
    assert on_disk["history"][-1]["train_loss"] < on_disk["history"][0]["train_loss"]


def test_checkpoint_rebuilds_the_model_with_its_metadata(lenet_run):
    model, ckpt = load_checkpoint(lenet_run.checkpoint)
    meta = ckpt.meta
    assert meta.model == "lenet5" and meta.model_options == {"num_classes": 10, "in_channels": 1}
    assert meta.labels == [str(i) for i in range(10)] and meta.dataset == "digits"
    assert meta.preprocessing.color_mode == "L" and meta.preprocessing.image_size == 32
    assert meta.recipe == get_recipe("lenet5").override(epochs=3)
    assert meta.metrics["test_top1"] == lenet_run.metrics["test_top1"]
    assert meta.frozen == [], "training from scratch trains every parameter"
    # The rebuilt model scores what training measured, on data prepared from the metadata alone: to
    # within one test image, as training evaluated with its recipe's thread count and rounded differently.
    p = meta.preprocessing
    data = load_data(meta.dataset, image_size=p.image_size, in_channels=p.channels, preprocessing=p)
    one_image = 100 / len(data.test)
    assert evaluate_model(model, data.test)["top1"] == pytest.approx(lenet_run.metrics["test_top1"], abs=one_image)
    assert ckpt.training is None  # the resume state lives in last.pt
    assert read_checkpoint(lenet_run.out / "last.pt").training["epoch"] == 2


def test_resume_continues_as_if_never_interrupted(tmp_path: Path):
    straight = train(quick_config(tmp_path / "straight"))
    stopped = train(quick_config(tmp_path / "resumed", stop_after=2))
    assert stopped.metrics == {"stopped_after": 2}
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = train(quick_config(tmp_path / "resumed", resume=True))
    a, b = straight.metrics["history"], resumed.metrics["history"]
    assert len(b) == 3
    for x, y in zip(a, b, strict=True):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-5)
        assert x["val_loss"] == pytest.approx(y["val_loss"], rel=1e-5)
    # Weights equal to float noise (the losses above): the same test score, to within one image of 359.
    assert resumed.metrics["test_top1"] == pytest.approx(straight.metrics["test_top1"], abs=100 / 359)


def test_resume_refuses_another_models_state(tmp_path: Path):
    train(quick_config(tmp_path, epochs=2, stop_after=1, limit_train=64))
    with pytest.raises(ValueError, match="is from lenet5 on digits, not lenet5 on digits:0-4"):
        train(quick_config(tmp_path, data="digits:0-4", resume=True, limit_train=64))


def test_early_stopping_and_last_policies(tmp_path: Path):
    recipe = get_recipe("lenet5").override(patience=1, lr=1e-9, epochs=6)
    result = train(quick_config(tmp_path, recipe=recipe, limit_train=64, last="delete"))
    assert result.metrics["stopped_early"] and result.metrics["epochs"] < 6
    assert not (tmp_path / "last.pt").exists() and (tmp_path / "checkpoint.pt").exists()
    # "none" never writes it: an interrupted run leaves nothing to resume from.
    train(quick_config(tmp_path / "none", epochs=2, stop_after=1, limit_train=64, last="none"))
    assert not (tmp_path / "none" / "last.pt").exists()
    with pytest.raises(ValueError, match="last must be one of keep, delete, none"):
        quick_config(tmp_path, last="sometimes")


def test_recipes_cover_the_default_set_and_flags_not_given_change_nothing():
    assert set(DEFAULT_SET) <= set(RECIPES)
    recipe = RECIPES["lenet5"]
    assert recipe.override(epochs=None, lr=None) is recipe
    assert TrainConfig(model="lenet5").resolve_recipe() == recipe
    assert TrainConfig(model="lenet5", epochs=4).resolve_recipe().epochs == 4
    assert Recipe.from_dict(RECIPES["googlenet"].to_dict()) == RECIPES["googlenet"]
    assert RECIPES["googlenet"].options == {"aux_logits": True}
    for name in DEFAULT_SET:
        if name in models.list_models():
            info = models.get_model_info(name)
            assert RECIPES[name].image_size >= info.min_input_size, name
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Recipe(optimizer="lbfgs")
    with pytest.raises(TypeError, match="unknown recipe field"):
        recipe.override(learning_rate=0.1)


def test_schedules():
    cosine = _lr_lambda(Recipe(epochs=10, warmup_epochs=1), steps_per_epoch=10)
    assert cosine(0) == pytest.approx(0.1) and cosine(9) == pytest.approx(1.0)
    assert cosine(55) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0)
    step = _lr_lambda(Recipe(epochs=4, schedule="step"), steps_per_epoch=1)
    assert [step(i) for i in range(4)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def test_aux_loss_weights_side_heads():
    main, a2, a1 = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 0])
    ce = nn.CrossEntropyLoss()
    loss, logits = _loss((main, a2, a1), y, ce, aux_weight=0.3)
    assert loss.item() == pytest.approx((ce(main, y) + 0.3 * (ce(a1, y) + ce(a2, y))).item())
    assert logits is main


@pytest.mark.skipif("googlenet" not in models.list_models(), reason="googlenet not registered")
def test_googlenet_trains_with_aux_heads_and_exports_without(tmp_path: Path):
    result = train(
        TrainConfig(
            model="googlenet", data="digits:0-1", out=tmp_path, epochs=1, limit_train=16, batch_size=8, quiet=True
        )
    )
    model, ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.meta.recipe.options == {"aux_logits": True}  # trained with them
    assert ckpt.meta.model_options["aux_logits"] is False  # exported without
    assert not any(k.startswith(("aux1.", "aux2.")) for k in ckpt.state_dict)
    assert model.aux1 is None
    assert any(k.startswith("aux1.") for k in read_checkpoint(tmp_path / "last.pt").state_dict)


def test_bad_sizes_say_which_size_to_use(tmp_path: Path):
    with pytest.raises(models.InputSizeError, match="train it with --image-size 32"):
        train(quick_config(tmp_path, image_size=28))
    with pytest.raises(models.UnknownModelError, match=r"known models: .*lenet5"):
        train(quick_config(tmp_path, model="lenet6"))


def test_dist_env_from_torchrun_variables():
    assert DistEnv.from_env({}) == DistEnv()
    env = DistEnv.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert env.distributed and not env.main and env.local_rank == 1
