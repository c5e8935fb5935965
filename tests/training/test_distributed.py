"""torchrun with 2 CPU processes (gloo) gives a single process's results up to float noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.train import train

from .conftest import quick_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path: Path):
    args = ["--epochs", "2", "--limit-train", "256", "--batch-size", "32", "--seed", "1", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "training",
        "train",
        "lenet5",
        "--out",
        str(tmp_path / "ddp"),
        *args,
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("lenet5: test top-1") == 1  # rank 0 reports, rank 1 stays quiet
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())

    single = train(quick_config(tmp_path / "single", epochs=2, limit_train=256, batch_size=32, seed=1)).metrics
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    for a, b in zip(single["history"], ddp["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    assert ddp["test_top1"] == pytest.approx(single["test_top1"], abs=0.3)  # at most one image of 359
