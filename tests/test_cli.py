import subprocess
import sys

from avadet.cli import COMMANDS, main, resolve_command


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "avadet", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in COMMANDS:
        assert name in out


def test_every_command_module_exists_and_has_its_entry_points():
    for name in COMMANDS:
        command = resolve_command(name)
        assert callable(command.add_arguments) and callable(command.run), name


def test_unknown_command_is_a_usage_error(capsys):
    try:
        code = main(["no-such-command"])
    except SystemExit as exc:  # argparse reports the invalid choice
        code = exc.code
    assert code == 2
