"""Every network of the zoo: builds, describes itself, and rejects inputs it cannot take."""

from __future__ import annotations

import pytest
import torch

import models
from models import InputSizeError, UnknownModelError
from tests.models.helpers import meta_model

ALL = models.list_models()

EXPECTED = {
    "lenet5",
    "alexnet",
    "alexnet_torchvision",
    "zfnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "nin_cifar",
    "nin",
    "googlenet",
    "googlenet_torchvision",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "mobilenet_v1",
    "mobilenet_v2",
    *(f"efficientnet_b{i}" for i in range(8)),
    "inception_module",
    "course_convnet",
    "keras_example_1",
    "keras_example_2",
    "keras_example_3",
}


def test_every_expected_network_is_registered() -> None:
    assert set(ALL) >= EXPECTED, f"missing: {sorted(EXPECTED - set(ALL))}"


@pytest.mark.parametrize("name", ALL)
def test_builds_and_describes_itself(name: str) -> None:
    model = meta_model(name)
    info = model.info
    assert info.name == name and info.family and info.paper.title and info.paper.year > 1980
    assert len(info.input_size) == 3 and len(info.mean) == len(info.std) == info.input_size[0]
    assert 1 <= info.min_input_size <= min(info.input_size[1:])
    out = model(torch.empty(2, *info.input_size, device="meta"))
    if info.classifier is not None:
        assert tuple(out.shape) == (2, info.num_classes)
        assert isinstance(model.get_classifier(), (torch.nn.Linear, torch.nn.Conv2d))


@pytest.mark.parametrize("name", [n for n in ALL if models.get_model_info(n).classifier is not None])
def test_class_count_and_channels_are_options(name: str) -> None:
    info = models.get_model_info(name)
    model = meta_model(name, num_classes=7, in_channels=1)
    side = info.input_size[1]
    assert tuple(model(torch.empty(1, 1, side, side, device="meta")).shape) == (1, 7)
    assert model.info.num_classes == 7 and model.info.input_size[0] == 1 and len(model.info.mean) == 1


@pytest.mark.parametrize("name", [n for n in ALL if not models.get_model_info(n).fixed_input_size])
def test_minimum_input_size_is_enforced_and_named(name: str) -> None:
    model = meta_model(name).eval()  # one sample at 1x1 in the last stage: batch norm needs eval mode
    c, smallest = model.info.input_size[0], model.info.min_input_size
    model(torch.empty(1, c, smallest, smallest, device="meta"))  # the minimum itself runs
    if smallest > 1:
        with pytest.raises(InputSizeError, match=f"at least {smallest}x{smallest}"):
            model(torch.empty(1, c, smallest - 1, smallest - 1, device="meta"))


def test_alexnet_at_32_fails_at_once_naming_the_minimum() -> None:
    model = models.create_model("alexnet", num_classes=10)
    with pytest.raises(InputSizeError, match=r"alexnet needs inputs of at least \d+x\d+"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputSizeError, match="at least"):
        models.summarize(model, (3, 32, 32))


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModelError) as err:
        models.create_model("resnet19")
    assert "resnet18" in str(err.value) and "lenet5" in str(err.value)


def test_list_models_wildcards() -> None:
    assert models.list_models("resnet*") == ["resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert "vgg16_bn" not in models.list_models("vgg*", exclude="*_bn")


def test_duplicate_registration_is_an_error() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        models.register_model(family="x", paper=None, input_size=(1, 1, 1), min_input_size=1)(models.lenet.lenet5)


def test_a_former_name_builds_the_network_and_warns_of_its_new_name() -> None:
    with pytest.warns(DeprecationWarning, match="'seed_convnet' is deprecated; use 'course_convnet'") as caught:
        model = meta_model("seed_convnet")
    assert model.info.name == "course_convnet"
    with pytest.warns(DeprecationWarning, match="use 'course_convnet'") as caught_info:
        info = models.get_model_info("seed_convnet")
    assert info is models.get_model_info("course_convnet")
    # The warning points at the code that used the old name, not at the registry.
    assert caught_info[0].filename == __file__
    assert caught[0].filename.endswith("helpers.py")


def test_former_names_are_not_listed_nor_registered_again() -> None:
    assert "seed_convnet" not in models.list_models()
    with pytest.raises(UnknownModelError) as err:
        models.create_model("resnet19")
    assert "seed_convnet" not in str(err.value)
    info = {"family": "x", "paper": None, "input_size": (1, 1, 1), "min_input_size": 1}
    with pytest.raises(ValueError, match="'seed_convnet' is registered twice"):
        models.register_model(name="seed_convnet", **info)(models.lenet.lenet5)
    with pytest.raises(ValueError, match="'lenet5' is registered twice"):
        models.register_model(name="lenet6", deprecated_names=("lenet5",), **info)(models.lenet.lenet5)
    assert "lenet6" not in models.list_models()


def test_reset_classifier_on_real_weights() -> None:
    model = models.create_model("lenet5")
    model.reset_classifier(3)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 3) and model.info.num_classes == 3
