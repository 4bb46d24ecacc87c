"""``avadet train --config CFG [key=value ...] [--no-resume [--overwrite]]``.

Runs unchanged under ``torchrun`` (``torchrun --nproc_per_node N -m avadet train ...``).
Each evaluation's frame-mAP is shown above the progress bar; an interrupted run (Ctrl-C,
SIGTERM) prints the command that resumes it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

from avadet.commands._common import add_config_arguments, add_threads_argument, set_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_threads_argument(parser)
    add_config_arguments(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="resume", action="store_true", default=True,
                       help="continue from the latest checkpoint in train.output_dir (the default)")
    group.add_argument("--no-resume", dest="resume", action="store_false",
                       help="start from scratch; refused if train.output_dir holds checkpoints, "
                            "unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --no-resume: delete the folder's checkpoints, metrics and log first")


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    from avadet import api
    from avadet.api import OutputDirInUse, TrainingInterrupted
    from avadet.errors import AvadetError

    if args.overwrite and args.resume:
        print("avadet train: --overwrite only applies with --no-resume", file=sys.stderr)
        return 2
    missing = _synthetic_data_missing(args.config, api.load_config(args.config, args.overrides))
    if missing:
        raise AvadetError(missing)
    try:
        with _evaluations_on_console(api.EVAL_LOGGER), _sigterm_interrupts():
            result = api.train(args.config, args.overrides, resume=args.resume,
                               overwrite=args.overwrite)
    except OutputDirInUse as exc:
        raise AvadetError(
            f"{exc.output_dir} already holds checkpoints (latest {exc.latest}); resume it (the "
            "default), choose another train.output_dir, or pass --overwrite to start over"
        ) from None
    except TrainingInterrupted as exc:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one hint, not one per process
            again = "resume with" if exc.checkpoint is not None else "start it again with"
            print(f"avadet train: {exc}; {again}: {resume_command(args)}", file=sys.stderr)
        return 130
    for note in result.notes:
        print(f"avadet train: {note}")
    return 0


_PRESET_LINE = re.compile(r"#\s*Synthetic AVA, preset '(\w+)'")


def _synthetic_data_missing(config_path: str, cfg: Any) -> Optional[str]:
    """For a synthetic config whose train annotations do not exist yet: the error that says
    how to make them (``avadet make-synthetic``); None otherwise (other configs' missing
    files are reported by the data layer)."""
    root = Path(cfg.data.root).expanduser() if cfg.data.root else None
    train = Path(cfg.data.train_annotations).expanduser()
    if root is not None and not train.is_absolute():
        train = root / train
    if train.is_file():
        return None
    try:
        head = Path(config_path).read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        head = ""
    match = _PRESET_LINE.search(head)
    in_synthetic = (Path(config_path).resolve().parent.name == "synthetic"
                    or (root is not None and "synthetic" in root.name))
    if match is None and not in_synthetic:
        return None
    preset = match.group(1) if match else None
    if preset is None and root is not None:
        named = re.fullmatch(r"synthetic_(\w+)", root.name)
        preset = named.group(1) if named else None
    out = str(root) if root is not None else "OUT"
    make = shlex.join(["avadet", "make-synthetic", out, *(["--preset", preset] if preset else [])])
    return (f"data.train_annotations: no such file {train}; this synthetic config's data is "
            f"not made yet: run '{make}' first (it also writes {out}/config.yaml)")


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run: the same config and overrides, resuming (the
    default), never ``--no-resume --overwrite``, which would delete what was trained."""
    words = ["avadet", "train", "--config", args.config, *args.overrides]
    world = os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("WORLD_SIZE")
    if world and world != "1":
        words = ["torchrun", f"--nproc_per_node={world}", "-m", *words]
        if os.environ.get("WORLD_SIZE", world) != world:  # several nodes: their flags are theirs
            words[1:1] = ["..."]
    return shlex.join(words)


class _ConsoleLines(logging.Handler):
    """Log records as ``avadet train: MESSAGE`` lines on stdout, written above the progress
    bar (``tqdm.write``) so the bar is redrawn below them instead of being broken."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(f"avadet train: {record.getMessage()}", file=sys.stdout)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _evaluations_on_console(name: str) -> Iterator[None]:
    """Show the library's evaluation lines (logger ``name``, INFO) on the console."""
    eval_logger = logging.getLogger(name)
    handler = _ConsoleLines(logging.INFO)
    old_level = eval_logger.level
    eval_logger.addHandler(handler)
    eval_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        eval_logger.removeHandler(handler)
        eval_logger.setLevel(old_level)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a scheduler's or torchrun's stop) ends the run like Ctrl-C: a clean exit with
    the resume hint, instead of a silent death. The first SIGTERM asks the training loop to
    stop after its current step (a KeyboardInterrupt raised in the handler itself could land
    in a finaliser, where Python drops it, and the run went on); a second one interrupts at
    once."""
    from avadet import api

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    asked = threading.Event()

    def interrupt(signum, frame):
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()
        api.request_stop()

    api.request_stop(False)
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        api.request_stop(False)
