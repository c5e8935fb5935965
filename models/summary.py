"""Per-layer summaries: shapes, parameters and multiply-accumulates, like Keras' ``model.summary()``.

The summary runs one forward pass with hooks. A model built on the meta device
(``with torch.device("meta")``) is summarized without any weight memory at all; a model with
real weights is run in place (no copy) on a single zero image under ``torch.no_grad()``.

MACs count the multiply-accumulates of convolutions and linear layers, the convention of
torchvision's published GFLOPS figures; normalisation, activations and pooling count zero.
The result is :class:`repository.SummaryRecord`, the schema the card stores and the service
serves, rendered as text or markdown by that one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from repository import LayerRecord, SummaryRecord

from ._registry import check_input_size, create_model

__all__ = ["canonical_summary", "conv_macs", "summarize"]


def conv_macs(conv: nn.Conv2d, output_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one sample through ``conv``: each output element reads Cin/groups x kh x kw inputs."""
    kh, kw = conv.kernel_size
    return _numel(output_shape) * (conv.in_channels // conv.groups) * kh * kw


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _layer_macs(module: nn.Module, out: Tensor) -> int:
    per_sample = list(out.shape[1:])
    if isinstance(module, nn.Conv2d):
        return conv_macs(module, per_sample)
    if isinstance(module, nn.Linear):
        return _numel(per_sample[:-1]) * module.in_features * module.out_features
    return 0


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _rows_modules(model: nn.Module, depth: int | None) -> list[tuple[str, nn.Module]]:
    """Leaf modules, or modules at ``depth`` (1 = the model's children) and shallower leaves."""
    picked = []
    for name, module in model.named_modules():
        if not name:
            continue
        level = name.count(".") + 1
        leaf = _is_leaf(module)
        if (depth is None and leaf) or (depth is not None and (level == depth or (level < depth and leaf))):
            picked.append((name, module))
    return picked or [("", model)]


def _own_params(module: nn.Module, recurse: bool) -> tuple[int, int]:
    total = trainable = 0
    for p in module.parameters(recurse=recurse):
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


class _Recorder:
    """Forward hooks that write one :class:`LayerRecord` per call of a row's module.

    With ``depth``, a row stands for a subtree: its parameters are the subtree's, and its MACs
    the sum over the leaves below it, which accumulate into their row as they run.
    """

    def __init__(self, rows: list[tuple[str, nn.Module]], depth: int | None) -> None:
        self.rows = rows
        self.grouped = depth is not None
        self.layers: list[LayerRecord] = []
        self._seen: set[int] = set()
        self._subtree_macs: dict[int, int] = {}

    def attach(self) -> list[RemovableHandle]:
        handles = []
        if self.grouped:
            for _, row_module in self.rows:
                for sub in row_module.modules():
                    if _is_leaf(sub):
                        handles.append(sub.register_forward_hook(self._leaf_hook(id(row_module))))
        for row_name, row_module in self.rows:
            handles.append(row_module.register_forward_hook(self._row_hook(row_name)))
        return handles

    def _leaf_hook(self, owner: int) -> Any:
        def hook(mod: nn.Module, args: tuple, out: Any) -> None:
            y = _first_tensor(out)
            if y is not None:
                self._subtree_macs[owner] = self._subtree_macs.get(owner, 0) + _layer_macs(mod, y)

        return hook

    def _row_hook(self, row_name: str) -> Any:
        def hook(mod: nn.Module, args: tuple, out: Any) -> None:
            x, y = _first_tensor(args), _first_tensor(out)
            if y is not None:
                self.layers.append(self._record(row_name, mod, x, y))

        return hook

    def _record(self, name: str, mod: nn.Module, x: Tensor | None, y: Tensor) -> LayerRecord:
        # A module called more than once (a shared ReLU) counts its parameters at the first call.
        first_call = id(mod) not in self._seen
        self._seen.add(id(mod))
        params, trainable = _own_params(mod, self.grouped) if first_call else (0, 0)
        macs = self._subtree_macs.pop(id(mod), 0) if self.grouped else _layer_macs(mod, y)
        return LayerRecord(
            name=name,
            type=type(mod).__name__,
            input_shape=list(x.shape[1:]) if x is not None else [],
            output_shape=list(y.shape[1:]),
            params=params,
            trainable_params=trainable,
            macs=macs,
            # In-place layers (ReLU(inplace=True)) write into their input: no new activation.
            activations=0 if getattr(mod, "inplace", False) else _numel(y.shape[1:]),
        )


def _forward_once(model: nn.Module, shape: list[int]) -> torch.dtype:
    """One zero image through ``model`` in eval mode, on its device and dtype; the mode is restored."""
    first = next(model.parameters(), None)
    device, dtype = (first.device, first.dtype) if first is not None else (torch.device("cpu"), torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=device, dtype=dtype))
    finally:
        model.train(was_training)
    return dtype


def _deepest(model: nn.Module) -> int:
    """The level of the deepest module (1: the model's children; 0: a model without children)."""
    return max((name.count(".") + 1 for name, _ in model.named_modules() if name), default=0)


def summarize(
    model: nn.Module, input_shape: Sequence[int], *, depth: int | None = None, name: str | None = None
) -> SummaryRecord:
    """Summarize ``model`` on one input of ``input_shape`` (C, H, W).

    ``depth`` limits the rows to modules that deep (their parameters and MACs include their
    children's); by default every leaf module gets a row, and ``depths`` holds the rows of
    every depth above the leaves, recorded in the same forward pass. A module called more than
    once (a shared ReLU) gets a row per call and its parameters are counted at the first.
    """
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    shape = [int(d) for d in input_shape]
    info = getattr(model, "info", None)
    if info is not None:
        check_input_size(info, shape)
    recorder = _Recorder(_rows_modules(model, depth), depth)
    # Each recorder keeps its own rows, so recording every depth at once gives what one
    # summarize(depth=d) each would: their hooks only read the tensors.
    grouped = {d: _Recorder(_rows_modules(model, d), d) for d in range(1, _deepest(model))} if depth is None else {}
    handles = [h for r in (recorder, *grouped.values()) for h in r.attach()]
    try:
        dtype = _forward_once(model, shape)
    finally:
        for handle in handles:
            handle.remove()
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    tensors = [*params, *model.buffers()]
    element = torch.empty((), dtype=dtype).element_size()
    return SummaryRecord(
        model=name or (info.name if info else type(model).__name__),
        input_shape=shape,
        layers=recorder.layers,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        total_macs=sum(r.macs for r in recorder.layers),
        param_bytes=sum(t.numel() * t.element_size() for t in tensors),
        activation_bytes=(_numel(shape) + sum(r.activations for r in recorder.layers)) * element,
        depths={d: r.layers for d, r in grouped.items()},
    )


def canonical_summary(name: str) -> SummaryRecord:
    """The summary of ``name`` as its paper has it (its own classes, canonical input), built on the meta device."""
    with torch.device("meta"):
        model = create_model(name)
    return summarize(model, model.info.input_size)
