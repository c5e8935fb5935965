"""``python -m training`` (and its deprecated aliases in ``python -m export``): flags, errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.cli import main as export_main
from training.cli import COMMANDS, build_parser, main


def test_train_command_writes_its_files(tmp_path: Path, capsys):
    code = main(["train", "lenet5", "--epochs", "1", "--limit-train", "64", "--out", str(tmp_path), "-q"])
    assert code == 0
    assert "lenet5: test top-1" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["split_sizes"]["train"] == 64
    assert metrics["recipe"]["batch_size"] == 32  # not given: the recipe's


def test_flags_not_given_stay_none():
    args = build_parser().parse_args(["train", "resnet18"])
    assert args.epochs is None and args.image_size is None and args.lr is None and args.data == "digits"
    args = build_parser().parse_args(
        ["finetune", "resnet18", "--from", "x.pt", "--data", "digits:5-9:10", "--mode", "feature-extract"]
    )
    assert args.source == Path("x.pt") and args.mode == "feature-extract"
    assert {"train", "finetune"} <= set(COMMANDS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "lenet6"], "unknown model 'lenet6'; known models:"),
        (["train", "lenet5", "--data", "/no/such/tree"], "does not exist; give 'digits' or a class-per-folder"),
        (["train", "lenet5", "--image-size", "16"], "train it with --image-size 32"),
        (["train", "lenet5", "--data", "digits:3"], "at least 2 classes"),
        (["finetune", "lenet5", "--data", "digits:5-9:10", "--mode", "finetune"], "needs --from"),
    ],
)
def test_bad_input_is_one_error_line(argv, message, tmp_path: Path, capsys):
    assert main([*argv, "--out", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_missing_required_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["finetune", "lenet5", "--data", "digits"])
    assert exc.value.code == 2
    assert "--mode" in capsys.readouterr().err


def test_export_keeps_the_training_commands_as_deprecated_aliases(tmp_path: Path, capsys):
    code = export_main(["train", "lenet5", "--epochs", "1", "--limit-train", "64", "--out", str(tmp_path), "-q"])
    assert code == 0
    captured = capsys.readouterr()
    assert "deprecated; use `python -m training train`" in captured.err
    assert "lenet5: test top-1" in captured.out and (tmp_path / "checkpoint.pt").is_file()
