"""Per-layer summaries: shapes, parameters and multiply-accumulates, like Keras' ``model.summary()``.

The summary runs one forward pass with hooks. A model built on the meta device
(``with torch.device("meta")``) is summarized without any weight memory at all; a model with
real weights is run in place (no copy) on a single zero image under ``torch.no_grad()``.

MACs count the multiply-accumulates of convolutions and linear layers, the convention of
torchvision's published GFLOPS figures; normalisation, activations and pooling count zero.
The JSON schema (:meth:`Summary.to_dict`) is the one the service returns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["LayerRow", "Summary", "conv_macs", "summarize"]


@dataclass
class LayerRow:
    name: str
    type: str
    input_shape: list[int]
    output_shape: list[int]
    params: int
    trainable_params: int
    macs: int
    activations: int


@dataclass
class Summary:
    model: str
    input_shape: list[int]
    layers: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    total_macs: int = 0
    param_bytes: int = 0
    activation_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_text(self) -> str:
        return _render_text(self)

    def to_markdown(self) -> str:
        return _render_markdown(self)


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


def _rows_modules(model: nn.Module, depth: int | None) -> list[tuple[str, nn.Module]]:
    """Leaf modules, or modules at ``depth`` (1 = the model's children) and shallower leaves."""
    picked = []
    for name, module in model.named_modules():
        if not name:
            continue
        level = name.count(".") + 1
        is_leaf = next(module.children(), None) is None
        if (depth is None and is_leaf) or (depth is not None and (level == depth or (level < depth and is_leaf))):
            picked.append((name, module))
    return picked or [("", model)]


def _own_params(module: nn.Module, recurse: bool) -> tuple[int, int]:
    total = trainable = 0
    for p in module.parameters(recurse=recurse):
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def summarize(model: nn.Module, input_shape: Sequence[int], *, depth: int | None = None, name: str | None = None) -> Summary:
    """Summarize ``model`` on one input of ``input_shape`` (C, H, W).

    ``depth`` limits the rows to modules that deep (their parameters and MACs include their
    children's); by default every leaf module gets a row. A module called more than once
    (a shared ReLU) gets a row per call and its parameters are counted at the first.
    """
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    shape = [int(d) for d in input_shape]
    info = getattr(model, "info", None)
    if info is not None:
        from ._registry import check_input_size

        check_input_size(info, shape)
    try:
        first = next(model.parameters())
        device, dtype = first.device, first.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32

    summary = Summary(model=name or (info.name if info else type(model).__name__), input_shape=shape)
    targets = _rows_modules(model, depth)
    seen: set[int] = set()
    handles = []

    def hook_for(row_name: str, module: nn.Module):
        recurse = depth is not None

        def hook(mod: nn.Module, args: tuple, out: Any) -> None:
            x, y = _first_tensor(args), _first_tensor(out)
            if y is None:
                return
            first_call = id(mod) not in seen
            seen.add(id(mod))
            params, trainable = _own_params(mod, recurse) if first_call else (0, 0)
            macs = _layer_macs(mod, y) if not recurse else _subtree_macs.pop(id(mod), 0)
            summary.layers.append(
                LayerRow(
                    name=row_name,
                    type=type(mod).__name__,
                    input_shape=list(x.shape[1:]) if x is not None else [],
                    output_shape=list(y.shape[1:]),
                    params=params,
                    trainable_params=trainable,
                    macs=macs,
                    # In-place layers (ReLU(inplace=True)) write into their input: no new activation.
                    activations=0 if getattr(mod, "inplace", False) else _numel(y.shape[1:]),
                )
            )

        return hook

    # With --depth, a row's MACs are the sum over the leaves below it: leaf hooks accumulate
    # into their row's ancestor.
    _subtree_macs: dict[int, int] = {}
    if depth is not None:
        for row_name, row_module in targets:
            for sub in row_module.modules():
                if next(sub.children(), None) is None:

                    def leaf_hook(mod: nn.Module, args: tuple, out: Any, owner: int = id(row_module)) -> None:
                        y = _first_tensor(out)
                        if y is not None:
                            _subtree_macs[owner] = _subtree_macs.get(owner, 0) + _layer_macs(mod, y)

                    handles.append(sub.register_forward_hook(leaf_hook))
    for row_name, row_module in targets:
        handles.append(row_module.register_forward_hook(hook_for(row_name, row_module)))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    all_params = list(model.parameters())
    summary.total_params = sum(p.numel() for p in all_params)
    summary.trainable_params = sum(p.numel() for p in all_params if p.requires_grad)
    summary.non_trainable_params = summary.total_params - summary.trainable_params
    summary.total_macs = sum(r.macs for r in summary.layers)
    summary.param_bytes = sum(p.numel() * p.element_size() for p in all_params) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )
    element = torch.empty((), dtype=dtype).element_size()
    summary.activation_bytes = (_numel(shape) + sum(r.activations for r in summary.layers)) * element
    return summary


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def _shape(dims: Sequence[int]) -> str:
    return "(None, " + ", ".join(str(d) for d in dims) + ")"


def _render_text(s: Summary) -> str:
    head = ("Layer (type)", "Output Shape", "Param #", "MACs")
    rows = [(f"{r.name} ({r.type})", _shape(r.output_shape), f"{r.params:,}", _human(r.macs)) for r in s.layers]
    widths = [max(len(head[i]), *(len(row[i]) for row in rows)) if rows else len(head[i]) for i in range(4)]
    line = "=" * (sum(widths) + 6)

    def fmt(row: Sequence[str]) -> str:
        return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:>{widths[3]}}"

    out = [f'Model: "{s.model}"  input: {"x".join(map(str, s.input_shape))}', line, fmt(head), line]
    out += [fmt(r) for r in rows]
    out += [
        line,
        f"Total params: {s.total_params:,}",
        f"Trainable params: {s.trainable_params:,}",
        f"Non-trainable params: {s.non_trainable_params:,}",
        f"Total MACs: {_human(s.total_macs)} ({s.total_macs:,})",
        f"Params size (MB): {s.param_bytes / 2**20:.2f}",
        f"Forward activations size (MB): {s.activation_bytes / 2**20:.2f}",
    ]
    return "\n".join(out)


def _render_markdown(s: Summary) -> str:
    out = [
        f"**{s.model}**, input {'x'.join(map(str, s.input_shape))}",
        "",
        "| Layer | Type | Output shape | Params | MACs |",
        "|---|---|---|---:|---:|",
    ]
    out += [f"| `{r.name}` | {r.type} | {'x'.join(map(str, r.output_shape))} | {r.params:,} | {r.macs:,} |" for r in s.layers]
    out += [
        "",
        f"Total params: {s.total_params:,} (trainable {s.trainable_params:,}, non-trainable {s.non_trainable_params:,}); "
        f"MACs: {s.total_macs:,}; params {s.param_bytes / 2**20:.2f} MB; activations {s.activation_bytes / 2**20:.2f} MB",
    ]
    return "\n".join(out)
