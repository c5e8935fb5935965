"""The transfer-learning experiment end to end, small: LeNet-5, 3 target images per class, 2 seeds."""

from __future__ import annotations

from pathlib import Path

from training.transfer import TransferExperiment, run_experiment, write_page


def test_experiment_runs_every_mode_and_writes_the_page(tmp_path: Path) -> None:
    experiment = TransferExperiment(model="lenet5", per_class=(3,), seeds=(0, 1), out=tmp_path / "runs")
    result = run_experiment(experiment)
    assert result.source_metrics["split_sizes"]["train"] > 600 and result.source_metrics["test_top1"] > 90
    modes = result.runs[3]
    assert set(modes) == {"feature-extract", "finetune", "scratch"}
    for runs in modes.values():
        assert len(runs.top1) == 2 and all(0 <= t <= 100 for t in runs.top1)
    # Feature extraction trains the new 5-class head only: fc 84 -> 5.
    assert modes["feature-extract"].trainable == 84 * 5 + 5 < modes["finetune"].trainable == modes["finetune"].params
    assert result.target_sizes[3]["train"] == 15 and result.target_sizes[3]["test"] == 179
    page = write_page(result, tmp_path / "transfer.md", "python -m training transfer-experiment ...")
    text = page.read_text()
    assert "| `feature-extract` |" in text and "3 images per class:" in text and "425 (" in text
