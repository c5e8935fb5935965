"""What the network tests share: networks on the meta device, counts, recorded shapes, random weights."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

import models


def meta_model(name: str, **kwargs) -> nn.Module:
    """``name`` built on the meta device: shapes and counts without allocating the weights."""
    with torch.device("meta"):
        return models.create_model(name, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def state_layout(model: nn.Module) -> dict[str, list[int]]:
    """The state_dict's names and shapes, as ``tests/data/torchvision_layouts.json`` writes them."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def output_shapes(model: nn.Module, x: Tensor, layers: type[nn.Module] | Iterable[nn.Module]) -> list[tuple[int, ...]]:
    """The shape without the batch that each of ``layers`` (or each layer of that type) gives in a forward of ``x``."""
    if isinstance(layers, type):
        layers = [m for m in model.modules() if isinstance(m, layers)]
    shapes: list[tuple[int, ...]] = []

    def record(_layer: nn.Module, _inputs: tuple[Tensor, ...], out: Tensor) -> None:
        shapes.append(tuple(out.shape[1:]))

    hooks = [m.register_forward_hook(record) for m in layers]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def multiply_adds(model: nn.Module, side: int) -> int:
    """Conv and FC multiply-adds of one forward pass at ``side`` x ``side``, from layer shapes."""
    total = 0

    def count(layer: nn.Module, _inputs: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            total += out[0].numel() * layer.in_channels // layer.groups * kh * kw
        else:
            total += layer.in_features * layer.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        model(torch.empty(1, model.info.input_size[0], side, side, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def random_state_dict(layout: dict[str, list[int]]) -> dict[str, Tensor]:
    """Real tensors of the shapes in ``layout``, scaled so that a forward pass of a deep network stays finite."""
    gen = torch.Generator().manual_seed(0)
    state: dict[str, Tensor] = {}
    for name, shape in layout.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(0)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) > 1:  # conv and linear weights: He scaling keeps activations level
            fan_in = torch.Size(shape[1:]).numel()
            state[name] = torch.randn(shape, generator=gen) * (2 / fan_in) ** 0.5
        else:  # norm scales and shifts, running means, biases
            base = 1.0 if name.endswith("weight") else 0.0
            state[name] = base + 0.1 * torch.randn(shape, generator=gen)
    return state
