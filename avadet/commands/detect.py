"""``avadet detect VIDEO --checkpoint CKPT --out DIR [--config CFG] [key=value ...]``: action
detection on a video file (see docs/detect.md).

Writes ``DIR/<name>.csv`` (AVA prediction rows), ``DIR/<name>.json`` (per keyframe and person:
track id, box, top actions) and ``DIR/<name>_annotated.mp4`` (same frame count and rate as the
input), and logs to ``DIR/<name>.log``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from avadet.commands._common import (
    ARCH_HELP,
    CHECKPOINT_HELP,
    add_detector_arguments,
    add_inference_arguments,
    add_threads_argument,
    detector_choice,
    set_threads,
    weights_hint,
)

# avadet.persons.torchvision_backend.DETECTOR_MODELS (a test keeps them equal); named here so
# that --help imports no torch.
DETECTOR_MODELS = ("r50_fpn", "mobilenet_v3_fpn", "mobilenet_v3_320")

# The limits api.detect_video checks again (ConfigError) for callers of the Python API; here
# they are checked while parsing, so a bad value is an argument error before any work starts.
# Keyframes closer than 0.01 s (one frame at 100 fps) only repeat the same frame's detections
# and make a run take minutes; one a day apart is the longest that still means something.
MIN_INTERVAL = 0.01
MAX_INTERVAL = 86400.0
MAX_SECONDS = 1e7  # --start and --timestamp-offset: about 115 days


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _interval(text: str) -> float:
    value = _number(text)
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_INTERVAL} and {MAX_INTERVAL:g} seconds, got {text}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SECONDS:g} seconds, "
                                         f"got {text}")
    return value


def _probability(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return value

    parse.__name__ = "integer"
    return parse


def _tighten(parser: argparse.ArgumentParser, dest: str, parse) -> None:
    """Give the shared detector flag ``dest`` (added by _common) detect's range check."""
    for action in parser._actions:
        if action.dest == dest:
            action.type = parse


def _model_sized(parser: argparse.ArgumentParser) -> None:
    """The detector's input size defaults to its model's own (R50-FPN 800 / 1333,
    MobileNetV3 320: 320 / 640), not the shared flags' 800 / 1333; ``--detector-size`` names
    the short side."""
    parser.set_defaults(detector_min_size=None, detector_max_size=None)
    for action in list(parser._actions):
        if action.dest == "detector_min_size":
            action.help = ("short side torchvision resizes keyframes to (default: the "
                           "model's own, 800 for r50_fpn; smaller is faster on a CPU)")
            group = next(g for g in parser._action_groups if action in g._group_actions)
            group.add_argument("--detector-size", dest="detector_min_size", type=_count(1),
                               default=argparse.SUPPRESS, metavar="PIXELS",
                               help="the same as --detector-min-size")
            group.add_argument(
                "--detector-model", choices=DETECTOR_MODELS, default=DETECTOR_MODELS[0],
                help="torchvision's COCO Faster R-CNN for --persons torchvision: r50_fpn "
                     "(default), mobilenet_v3_fpn, mobilenet_v3_320 (faster; recall: "
                     "docs/detect.md); --detector-weights then takes that model's weights")
        elif action.dest == "detector_max_size":
            action.help = ("long-side cap of the detector's input (default: the model's "
                           "own, 1333 for r50_fpn)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file (any container PyAV/ffmpeg reads)")
    parser.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    parser.add_argument("--arch", help=ARCH_HELP)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", help="config whose data and inference settings apply "
                                         "(the model, its sampling and normalisation always "
                                         "come from the checkpoint)")
    parser.add_argument("--labelmap", help="label map (.pbtxt) for class names "
                                           "(default: the config's data.labelmap)")
    parser.add_argument("--interval", type=_interval, default=1.0,
                        help=f"seconds between keyframes, {MIN_INTERVAL} to {MAX_INTERVAL:g} "
                             "(default: %(default)s)")
    parser.add_argument("--start", type=_seconds, default=0.0,
                        help="time of the first keyframe in seconds, >= 0 "
                             "(default: %(default)s)")
    parser.add_argument("--top-k", type=_count(0), default=0,
                        help="CSV rows per person: the K best classes (0: every class, as "
                             "AVA prediction files; default)")
    parser.add_argument("--show-top", type=_count(0), default=3,
                        help="actions drawn and listed in the JSON per person (default: 3)")
    parser.add_argument("--video-id", help="video id in the CSV (default: the file name stem)")
    parser.add_argument("--timestamp-offset", type=_seconds, default=0.0,
                        help="added to the keyframe times in the outputs and CSV box lookups "
                             "(e.g. 900 for a cut AVA segment)")
    parser.add_argument("--no-video", action="store_true", help="skip the annotated video")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    add_threads_argument(parser)
    _tighten(parser, "threads", _count(0))
    add_inference_arguments(parser)
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                        help="what runs the action model: torch (default) or ONNX Runtime on "
                             "the CPU (the model exported to ONNX; pip install "
                             "'avadet[export]'; same scores within 1e-4)")
    parser.add_argument("--no-progress", action="store_true")
    add_detector_arguments(parser)
    _tighten(parser, "person_threshold", _probability)
    _tighten(parser, "detector_min_size", _count(1))
    _tighten(parser, "detector_max_size", _count(1))
    _tighten(parser, "detector_batch", _count(1))
    _model_sized(parser)
    speed = parser.add_argument_group("speed (the scores do not depend on these)")
    speed.add_argument("--batch-keyframes", type=_count(1), metavar="K",
                       help="keyframes whose clips go through the action model in one forward "
                            "pass (default: the measured best, docs/detect.md)")
    speed.add_argument("--persons-thread", action=argparse.BooleanOptionalAction,
                       help="run the person detector in a thread of its own, beside the "
                            "action model, torch's threads split between them (default: as "
                            "measured best, docs/detect.md)")
    speed.add_argument("--decode-thread", action=argparse.BooleanOptionalAction,
                       help="decode the video in a thread of its own (default: as measured "
                            "best, docs/detect.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides of the inference settings, e.g. data.test_detection_score=0.6")


def run(args: argparse.Namespace) -> int:
    from avadet import api

    set_threads(args.threads)
    speed = {name: getattr(args, name) for name in
             ("batch_keyframes", "persons_thread", "decode_thread")
             if getattr(args, name) is not None}
    with weights_hint():
        out = api.detect_video(
            args.video, args.checkpoint, args.out, config=args.config, overrides=args.overrides,
            persons=dataclasses.replace(detector_choice(args), model=args.detector_model),
            person_threshold=args.person_threshold,
            labelmap=args.labelmap, interval=args.interval, start=args.start,
            top_k=args.top_k, show_top=args.show_top, video_id=args.video_id,
            timestamp_offset=args.timestamp_offset, write_video=not args.no_video,
            arch=args.arch, device=args.device, progress=not args.no_progress,
            deploy=False if args.no_deploy else None, precision=args.precision,
            backend=args.backend,
            **speed,
        )
    print(out.speed_line())
    for path in (out.csv, out.json, out.annotated):
        if path is not None:
            print(f"wrote {path}")
    return 0
