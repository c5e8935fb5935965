"""The Keras-style summary table, rendered from a card's :class:`SummaryRecord` without torch.

The layout is ``models.summary.Summary.to_text()``'s, character for character (a test compares
the two); ``models`` cannot be imported here because it imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from export.repository import SummaryRecord

__all__ = ["render_text"]


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
