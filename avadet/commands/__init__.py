"""The ``avadet`` commands: one module per command, one convention, nothing else.

Each module ``avadet/commands/<name>.py`` (the command's name with ``_`` for ``-``) defines::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...   # the exit status

A command parses its flags, calls the use case in :mod:`avadet.api`, and prints what it
found; it is the only place that prints or speaks of flags. Modules import their heavy
dependencies inside ``run``, so that ``avadet --help`` and every ``--help`` stay fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> one-line help, in the order of the pipeline. The module is derived from the name.
COMMANDS: dict[str, str] = {
    "demo": "the whole system on a synthetic dataset, on the CPU (no download)",
    "make-synthetic": "generate a synthetic AVA-format dataset",
    "download-annotations": "download the AVA annotations and person boxes (resumable, verified)",
    "cut-videos": "cut the annotated 15-minute segment out of AVA movies",
    "extract-frames": "extract 30 fps JPEG frames from cut videos (optional)",
    "make-frame-lists": "write PySlowFast frame lists from a frames folder",
    "convert-annotations": "per-frame box/label CSV or CVAT video XML -> AVA CSV + label map",
    "check-data": "check a dataset before training (the data doctor)",
    "detect-persons": "person boxes on a dataset's keyframes -> AVA box CSV",
    "train": "train a model (resumable; torchrun for many processes)",
    "models": "the published AVA checkpoints: names, authors' mAPs, in the cache or not",
    "test": "score the val keyframes with a checkpoint; frame-mAP",
    "eval": "frame-mAP of an AVA prediction CSV (official protocol)",
    "detect": "action detection on a video: CSV, JSON, annotated mp4",
    "export": "a checkpoint's model as ONNX (clip + boxes in, scores out)",
}


def command_module(name: str) -> ModuleType:
    """The module of command ``name`` (KeyError for an unknown name)."""
    if name not in COMMANDS:
        raise KeyError(name)
    return importlib.import_module(f"avadet.commands.{name.replace('-', '_')}")
