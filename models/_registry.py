"""One registry for every network of the zoo, after timm's ``_registry.py``.

A family file decorates each public builder with :func:`register_model` and the
:class:`ModelInfo` that describes it; everything else (summaries, training, export,
the service's model cards) reads the description from here instead of special-casing names.
"""

from __future__ import annotations

import fnmatch
import functools
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from torch import nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InputSizeError",
    "ModelInfo",
    "Paper",
    "UnknownModelError",
    "check_input_size",
    "create_model",
    "get_model_info",
    "list_models",
    "register_model",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Paper:
    title: str
    authors: str
    year: int
    url: str

    def __str__(self) -> str:
        return f"{self.authors} ({self.year}), {self.title}. {self.url}"


@dataclass(frozen=True)
class ModelInfo:
    """What a network says about itself.

    ``input_size`` is the canonical (C, H, W) of the paper; ``min_input_size`` the smallest
    square side the network accepts (its stride and fixed-size layers decide it);
    ``fixed_input_size`` is set for networks whose flatten layer only takes the canonical size.
    ``classifier`` is the module path of the final layer, the one replaced for fine-tuning.
    ``torchvision`` names the torchvision architecture whose state_dict layout this one matches.
    """

    name: str
    family: str
    paper: Paper
    input_size: tuple[int, int, int]
    min_input_size: int
    num_classes: int = 1000
    classifier: str | None = "fc"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    fixed_input_size: bool = False
    torchvision: str | None = None
    description: str = ""
    builder: Callable[..., nn.Module] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "paper": str(self.paper),
            "input_size": list(self.input_size),
            "min_input_size": self.min_input_size,
            "fixed_input_size": self.fixed_input_size,
            "num_classes": self.num_classes,
            "classifier": self.classifier,
            "mean": list(self.mean),
            "std": list(self.std),
            "torchvision": self.torchvision,
            "description": self.description,
        }


class InputSizeError(ValueError):
    """A network was asked for an input it cannot take."""


class UnknownModelError(KeyError):
    """No network of that name is registered; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


_REGISTRY: dict[str, ModelInfo] = {}
# Old names that still build their network, with a DeprecationWarning naming the new one.
_DEPRECATED_NAMES: dict[str, str] = {}
M = TypeVar("M", bound=nn.Module)


def register_model(**info: Any) -> Callable[[Callable[..., M]], Callable[..., M]]:
    """Register a builder under its function name with the :class:`ModelInfo` fields given.

    The registered builder attaches ``model.info`` to what it builds: the description updated
    for the class count, input channels and (where the builder sets ``model.resolution``) the
    canonical resolution asked for. Calling the builder directly or through
    :func:`create_model` gives the same module.

    ``deprecated_names`` (a tuple) are former names of the network: :func:`create_model` and
    :func:`get_model_info` still take them, warning, and :func:`list_models` leaves them out.
    """

    def wrap(builder: Callable[..., M]) -> Callable[..., M]:
        name = info.pop("name", builder.__name__)
        old_names = info.pop("deprecated_names", ())
        for taken in (name, *old_names):
            if taken in _REGISTRY or taken in _DEPRECATED_NAMES:
                raise ValueError(f"model {taken!r} is registered twice")
        desc = info.pop("description", None) or (builder.__doc__ or "").strip().split("\n")[0]

        @functools.wraps(builder)
        def build(**kwargs: Any) -> M:
            model = builder(**kwargs)
            model.info = _describe(_REGISTRY[name], model, kwargs)
            return model

        _REGISTRY[name] = ModelInfo(name=name, builder=build, description=desc, **info)
        _DEPRECATED_NAMES.update(dict.fromkeys(old_names, name))
        return build

    return wrap


def _describe(info: ModelInfo, model: nn.Module, kwargs: dict[str, Any]) -> ModelInfo:
    channels = int(kwargs.get("in_channels", info.input_size[0]))
    side = getattr(model, "resolution", None)
    size = (side, side) if side else info.input_size[1:]
    mean, std = info.mean, info.std
    if channels != len(mean):
        # A grey network from an RGB recipe (or the reverse): one statistic for every channel.
        mean, std = (sum(mean) / len(mean),) * channels, (sum(std) / len(std),) * channels
    return replace(
        info,
        num_classes=int(kwargs.get("num_classes", info.num_classes)),
        input_size=(channels, *size),
        mean=mean,
        std=std,
    )


def _ensure_loaded() -> None:
    # Importing the package imports every family file, which fills the registry.
    import models  # noqa: F401


def list_models(include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None) -> list[str]:
    """Registered names, sorted, filtered by shell-style wildcards (``"resnet*"``)."""
    _ensure_loaded()
    names = sorted(_REGISTRY)

    def patterns(p: str | Iterable[str] | None) -> list[str]:
        return [p] if isinstance(p, str) else list(p or [])

    if include is not None:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns(include))]
    return [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in patterns(exclude))]


def get_model_info(name: str) -> ModelInfo:
    """What the network registered as ``name`` says about itself; a former name warns and still answers."""
    return _lookup(name)


def _lookup(name: str) -> ModelInfo:
    _ensure_loaded()
    if name in _DEPRECATED_NAMES:
        new = _DEPRECATED_NAMES[name]
        # stacklevel 3: the caller of get_model_info or create_model, both of which call this directly.
        warnings.warn(f"model name {name!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=3)
        name = new
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}") from None


def create_model(
    name: str, *, num_classes: int | None = None, in_channels: int | None = None, **options: Any
) -> nn.Module:
    """Build ``name`` with its defaults, overridden by the arguments that are not ``None``.

    ``options`` go to the family's builder (``dropout``, ``width_mult``, ``aux_logits``, ...).
    The module carries ``model.info``, its :class:`ModelInfo` for this configuration.
    """
    info = _lookup(name)
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if value is not None:
            if value < 1:
                raise ValueError(f"{arg} must be >= 1, got {value}")
            options[arg] = value
    assert info.builder is not None
    return info.builder(**options)


def check_input_size(info: ModelInfo, shape: Iterable[int]) -> None:
    """Raise :class:`InputSizeError` naming the size ``info``'s network needs, if ``shape`` won't do.

    ``shape`` is (C, H, W) or (N, C, H, W).
    """
    dims = tuple(int(d) for d in shape)
    if len(dims) == 4:
        dims = dims[1:]
    if len(dims) != 3:
        raise InputSizeError(f"{info.name} takes (C, H, W) inputs, got shape {dims}")
    c, h, w = dims
    want_c, want_h, want_w = info.input_size
    if c != want_c:
        raise InputSizeError(f"{info.name} was built for {want_c} input channels, got {c}")
    if info.fixed_input_size and (h, w) != (want_h, want_w):
        raise InputSizeError(f"{info.name} takes exactly {want_c}x{want_h}x{want_w} inputs, got {c}x{h}x{w}")
    if min(h, w) < info.min_input_size:
        raise InputSizeError(
            f"{info.name} needs inputs of at least {info.min_input_size}x{info.min_input_size} "
            f"(canonical {want_h}x{want_w}), got {h}x{w}"
        )
