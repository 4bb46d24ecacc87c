import re
import subprocess
import sys

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
    "test",
    "eval",
    "detect",
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
