import subprocess
import sys

from avadet.cli import COMMANDS, main


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "avadet", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in COMMANDS:
        assert name in out


def test_every_command_module_exists_and_has_its_entry_points():
    import importlib

    for name, (module_name, _) in COMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run), name


def test_unknown_command_is_a_usage_error(capsys):
    try:
        code = main(["no-such-command"])
    except SystemExit as exc:  # argparse reports the invalid choice
        code = exc.code
    assert code == 2
