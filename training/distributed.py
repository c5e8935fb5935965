"""Where a run executes: its place in a ``torchrun`` launch, the device, its precision and threads.

A process launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) joins a process
group (gloo on CPU, nccl on GPUs) for the run; :func:`all_reduce` sums the processes' counts and
:func:`barrier` waits for all of them. A single process is rank 0 of 1 and none of this costs it anything.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "SINGLE_PROCESS",
    "DistEnv",
    "Precision",
    "all_reduce",
    "barrier",
    "choose_device",
    "process_group",
    "set_threads",
]


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a ``torchrun`` launch (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DistEnv:
        world = int(environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        local_world = int(environ.get("LOCAL_WORLD_SIZE", str(world)))
        return cls(int(environ["RANK"]), world, int(environ.get("LOCAL_RANK", "0")), local_world)


SINGLE_PROCESS = DistEnv()


@dataclass(frozen=True)
class Precision:
    """Mixed precision on CUDA: bfloat16 where supported (no scaler needed), else float16; elsewhere none."""

    dtype: torch.dtype | None = None

    @classmethod
    def for_device(cls, device: torch.device) -> Precision:
        if device.type != "cuda":
            return cls()
        return cls(torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)

    @property
    def name(self) -> str | None:
        """``"bfloat16"``, ``"float16"`` or ``None``, as the metrics record it."""
        return None if self.dtype is None else str(self.dtype).replace("torch.", "")

    @property
    def scaled(self) -> bool:
        """Whether the loss needs a gradient scaler: float16's range is too narrow for small gradients."""
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.dtype)


def choose_device(requested: str | None, env: DistEnv) -> torch.device:
    """``requested``, else CUDA where available; each ``torchrun`` process takes the GPU of its local rank."""
    if requested is not None:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but CUDA is not available; use --device cpu")
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", env.local_rank if env.distributed else torch.cuda.current_device())
    return device


@contextlib.contextmanager
def process_group(env: DistEnv, device: torch.device) -> Iterator[None]:
    """The process group of a ``torchrun`` launch, for the duration of the block (one already set up is used)."""
    if not env.distributed or dist.is_initialized():
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def set_threads(requested: int | None, env: DistEnv) -> int:
    """Torch's intra-op threads: ``requested``, else this machine's cores shared by the processes on it."""
    threads = requested or max(1, (os.cpu_count() or 1) // env.local_world_size)
    torch.set_num_threads(threads)
    return threads


def all_reduce(values: Sequence[float], env: DistEnv, device: torch.device) -> list[float]:
    """``values`` summed over the processes, in float64 so that large sums of losses and counts stay exact."""
    if not env.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.barrier()
