"""Per-layer summaries: the schema of ``models.summarize`` and its one text rendering.

``models.summarize`` fills these records with torch; the card stores them and the service
renders them, neither with torch. The Keras-style table (:func:`render_text`) and the
markdown table (:func:`render_markdown`) are defined here once for both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LayerRecord", "SummaryRecord", "render_markdown", "render_text"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerRecord(_Record):
    name: str
    type: str
    input_shape: list[int]
    output_shape: list[int]
    params: int
    trainable_params: int
    macs: int
    activations: int


class SummaryRecord(_Record):
    """What ``models.summarize`` returns; ``to_dict()`` is the JSON the card stores and the service serves.

    ``layers`` has a row per leaf module. ``depths[d]`` has the rows of ``models.summarize(...,
    depth=d)`` (modules d deep, their subtree's parameters and MACs: blocks instead of layers) for
    every d from 1 to one less than the deepest leaf; :meth:`at_depth` makes them a summary of
    their own. Summaries written before depths existed have none (and write none back).
    """

    model: str
    input_shape: list[int]
    layers: list[LayerRecord]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    param_bytes: int
    activation_bytes: int
    # Left out when empty: a card's digests cover its JSON, and one written before depths existed
    # must read back unchanged.
    depths: dict[int, list[LayerRecord]] = Field(default_factory=dict, exclude_if=lambda depths: not depths)

    def at_depth(self, depth: int) -> SummaryRecord:
        """The summary with ``depths[depth]`` as its rows, as ``models.summarize(..., depth=depth)`` gives it.

        Parameters are the same at every depth; the MACs and the activations are those of the rows
        (an activation is counted where a row outputs it). A depth past the deepest stored one has a
        row per leaf, as ``summarize`` gives it (every module that deep is a leaf): ``layers``. Raises
        ``ValueError`` naming the depths stored for a summary written before depths were (it has none).
        """
        if depth not in self.depths and self.depths and depth > max(self.depths):
            return self.model_copy(update={"depths": {}})
        if depth not in self.depths:
            raise ValueError(f"no rows for depth {depth}; depths stored: {_depth_list(self.depths)}")
        rows = self.depths[depth]
        values = _numel(self.input_shape) + sum(r.activations for r in self.layers)
        element = self.activation_bytes // values  # bytes per value of the dtype summarized
        return self.model_copy(
            update={
                "layers": rows,
                "depths": {},
                "total_macs": sum(r.macs for r in rows),
                "activation_bytes": (_numel(self.input_shape) + sum(r.activations for r in rows)) * element,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_text(self) -> str:
        return render_text(self)

    def to_markdown(self) -> str:
        return render_markdown(self)


def _depth_list(depths: dict[int, list[LayerRecord]]) -> str:
    return ", ".join(map(str, sorted(depths))) or "none (only the leaf layers)"


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def _shape(dims: Sequence[int]) -> str:
    return "(None, " + ", ".join(str(d) for d in dims) + ")"


def render_text(s: SummaryRecord) -> str:
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


def render_markdown(s: SummaryRecord) -> str:
    out = [
        f"**{s.model}**, input {'x'.join(map(str, s.input_shape))}",
        "",
        "| Layer | Type | Output shape | Params | MACs |",
        "|---|---|---|---:|---:|",
    ]
    out += [
        f"| `{r.name}` | {r.type} | {'x'.join(map(str, r.output_shape))} | {r.params:,} | {r.macs:,} |"
        for r in s.layers
    ]
    out += [
        "",
        f"Total params: {s.total_params:,} (trainable {s.trainable_params:,}, "
        f"non-trainable {s.non_trainable_params:,}); MACs: {s.total_macs:,}; "
        f"params {s.param_bytes / 2**20:.2f} MB; activations {s.activation_bytes / 2**20:.2f} MB",
    ]
    return "\n".join(out)
