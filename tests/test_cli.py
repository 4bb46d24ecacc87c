import re
import subprocess
import sys
from pathlib import Path

import pytest

from avadet.cli import main
from avadet.commands import COMMANDS, command_module

# Every command a user has, written out: a command added or dropped must change this list.
EXPECTED_COMMANDS = [
    "demo",
    "make-synthetic",
    "download-annotations",
    "cut-videos",
    "extract-frames",
    "make-frame-lists",
    "convert-annotations",
    "check-data",
    "detect-persons",
    "train",
    "models",
    "test",
    "eval",
    "detect",
    "export",
]


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "avadet", "--help"], capture_output=True, text=True, check=True
    ).stdout
    listed = re.findall(r"^ {4}(\S+)", out, flags=re.MULTILINE)  # 4 spaces: a command's line
    assert listed == EXPECTED_COMMANDS
    assert list(COMMANDS) == EXPECTED_COMMANDS


@pytest.mark.parametrize("name", EXPECTED_COMMANDS)
def test_every_command_has_one_module_with_the_two_entry_points(name):
    module = command_module(name)
    assert module.__name__ == "avadet.commands." + name.replace("-", "_")
    assert callable(module.add_arguments) and callable(module.run), name


@pytest.mark.parametrize("name", EXPECTED_COMMANDS)
def test_every_command_answers_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: avadet {name}" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys):
    try:
        code = main(["no-such-command"])
    except SystemExit as exc:  # argparse reports the invalid choice
        code = exc.code
    assert code == 2


def _imported_modules(argv):
    """Run ``python -X importtime -m avadet ARGV`` (the real entry point); its exit status and
    the names of every module it imported (importtime's stderr lines)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "avadet", *argv],
                          capture_output=True, text=True, timeout=120)
    names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, re.MULTILINE))
    assert "avadet.cli" in names  # importtime really reported
    return proc.returncode, names


@pytest.mark.parametrize("argv", [[], ["--help"]]
                         + [[name, "--help"] for name in EXPECTED_COMMANDS]
                         + [[name, "--no-such-option"] for name in EXPECTED_COMMANDS])
def test_help_and_argument_errors_never_import_torch(argv):
    # torch takes seconds (tens on a cold disk) to import: help and usage errors must not wait.
    code, names = _imported_modules(argv)
    assert code == (2 if "--no-such-option" in argv else 0)
    assert not {n for n in names if n == "torch" or n.startswith("torch.")}, argv


def test_train_before_the_synthetic_data_exists_says_how_to_make_it(tmp_path, monkeypatch,
                                                                    capsys):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)  # the config's data.root, data/synthetic_tiny, is not here
    out = tmp_path / "run"
    code = main(["train", "--config", str(repo / "configs" / "synthetic" / "tiny.yaml"),
                 f"train.output_dir={out}"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "avadet train: error: data.train_annotations: no such file "
        "data/synthetic_tiny/annotations/ava_train_v2.2.csv; this synthetic config's data is not "
        "made yet: run 'avadet make-synthetic data/synthetic_tiny --preset tiny' first (it also "
        "writes data/synthetic_tiny/config.yaml)"
    ]
    assert not out.exists()  # refused before the run's folder is made

    # Without the header: a config in a 'synthetic' folder, the preset from data.root's name.
    folder = tmp_path / "configs" / "synthetic"
    folder.mkdir(parents=True)
    text = (repo / "configs" / "synthetic" / "cpu.yaml").read_text()
    (folder / "mine.yaml").write_text("\n".join(line for line in text.splitlines()
                                                if not line.startswith("#")))
    assert main(["train", "--config", str(folder / "mine.yaml"), f"train.output_dir={out}",
                 "data.root=elsewhere/synthetic_gpu"]) == 2
    err = capsys.readouterr().err
    assert "run 'avadet make-synthetic elsewhere/synthetic_gpu --preset gpu' first" in err


def test_train_with_missing_real_data_gets_no_synthetic_hint(tmp_path, capsys):
    repo = Path(__file__).resolve().parents[1]
    config = sorted((repo / "configs" / "ava").glob("*.yaml"))[0]
    code = main(["train", "--config", str(config), f"data.root={tmp_path / 'ava'}",
                 f"train.output_dir={tmp_path / 'run'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "make-synthetic" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["eval"], ["detect", "v.mp4", "--checkpoint", "c", "--out", "o",
                                           "--interval", "nan"], ["train", "--nope"]])
def test_a_usage_error_is_one_line_naming_the_command(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"avadet {argv[0]}: error: ")
    assert f"(see avadet {argv[0]} --help)" in err


# Every command that runs a model: --threads sets torch's CPU threads before any work (the
# demo's own tests cover it there).
COMPUTING = ["train", "test", "detect", "detect-persons"]


@pytest.mark.parametrize("name", COMPUTING)
def test_every_computing_command_takes_threads(name, monkeypatch):
    import argparse

    import torch

    from avadet.commands import command_module
    from avadet.errors import AvadetError

    module = command_module(name)
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    required = {"train": ["--config", "c"], "test": ["--config", "c"],
                "detect": ["v.mp4", "--checkpoint", "c", "--out", "o"],
                "detect-persons": ["--config", "c", "--out", "o"]}[name]
    args = parser.parse_args([*required, "--threads", "1"])
    assert args.threads == 1
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    # The thread count is set first thing; the command then fails on its missing inputs.
    with pytest.raises(AvadetError):
        module.run(args)
    assert seen[:1] == [1]
