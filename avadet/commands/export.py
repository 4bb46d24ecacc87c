"""``avadet export --checkpoint CKPT --out model.onnx [--arch A] [--short-side S] [--frames T]``:
the model of a checkpoint as an ONNX file (see docs/export.md)."""

from __future__ import annotations

import argparse

from avadet.commands._common import ARCH_HELP, CHECKPOINT_HELP


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    parser.add_argument("--out", required=True, metavar="MODEL.onnx", help="the ONNX file to write")
    parser.add_argument("--arch", help=ARCH_HELP)
    parser.add_argument("--short-side", type=_positive,
                        help="short side of the clip it is traced with (default: the "
                             "checkpoint's data.test_short_side; any size runs)")
    parser.add_argument("--frames", type=_positive,
                        help="Fast-rate frames of the clip, fixed in the file (default: the "
                             "checkpoint's data.num_frames)")


def run(args: argparse.Namespace) -> int:
    from avadet import api

    result = api.export_model(args.checkpoint, args.out, arch=args.arch,
                              short_side=args.short_side, frames=args.frames)
    print(f"wrote {result.path}: {result.source} checkpoint, {len(result.class_ids)} classes; "
          f"inputs clip (N, 3, {result.frames}, H, W) normalised (traced at "
          f"{result.height}x{result.width}) and boxes (K, 5) [batch_index, x1, y1, x2, y2] in "
          f"input pixels; output scores (K, {len(result.class_ids)})")
    return 0
