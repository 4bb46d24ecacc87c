"""``avadet detect VIDEO --checkpoint CKPT --out DIR [--config CFG] [key=value ...]``: action
detection on a video file (see docs/detect.md).

Writes ``DIR/<name>.csv`` (AVA prediction rows), ``DIR/<name>.json`` (per keyframe and person:
track id, box, top actions) and ``DIR/<name>_annotated.mp4`` (same frame count and rate as the
input), and logs to ``DIR/<name>.log``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Optional

from avadet.config import (
    Config,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_overrides,
    resolve_path,
)
from avadet.errors import AvadetError, FormatError

logger = logging.getLogger("avadet.detect")
# Settings a user may change at inference; the sampling and the model come from the checkpoint.
INFERENCE_KEYS = ("root", "labelmap", "test_detection_score", "test_short_side")
SAMPLING_KEYS = ("num_frames", "sampling_rate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avadet.persons import add_detector_arguments

    parser.add_argument("video", help="video file (any container PyAV/ffmpeg reads)")
    parser.add_argument("--checkpoint", required=True, help="avadet checkpoint (.pt)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", help="config whose data.root/labelmap/test_detection_score/"
                                         "test_short_side apply (model and sampling always "
                                         "come from the checkpoint)")
    parser.add_argument("--labelmap", help="label map (.pbtxt) for class names "
                                           "(default: the config's data.labelmap)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between keyframes (default: %(default)s)")
    parser.add_argument("--start", type=float, default=0.0,
                        help="time of the first keyframe in seconds (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=0,
                        help="CSV rows per person: the K best classes (0: every class, as "
                             "AVA prediction files; default)")
    parser.add_argument("--show-top", type=int, default=3,
                        help="actions drawn and listed in the JSON per person (default: 3)")
    parser.add_argument("--video-id", help="video id in the CSV (default: the file name stem)")
    parser.add_argument("--timestamp-offset", type=float, default=0.0,
                        help="added to the keyframe times in the outputs and CSV box lookups "
                             "(e.g. 900 for a cut AVA segment)")
    parser.add_argument("--no-video", action="store_true", help="skip the annotated video")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice); more threads than "
                             "free cores slows the models down a lot")
    parser.add_argument("--no-progress", action="store_true")
    add_detector_arguments(parser)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides of the inference settings, e.g. data.test_detection_score=0.6")


def inference_config(checkpoint_cfg: Config, config_path: Optional[str],
                     overrides: list[str]) -> Config:
    """The checkpoint's config with the inference settings of ``config_path`` / ``overrides``."""
    if config_path:
        user = load_config(config_path, overrides)
    else:
        base = config_to_dict(checkpoint_cfg)
        for section, values in parse_overrides(overrides).items():
            if isinstance(values, dict) and isinstance(base.get(section), dict):
                base[section] = {**base[section], **values}
            else:
                base[section] = values
        user = config_from_dict(base)
    changed = [f"data.{k}" for k in SAMPLING_KEYS
               if getattr(user.data, k) != getattr(checkpoint_cfg.data, k)]
    if user.model.arch != checkpoint_cfg.model.arch:
        changed.append("model.arch")
    if changed:
        logger.warning("ignoring %s of the given config: the checkpoint was trained with %s",
                       ", ".join(changed),
                       ", ".join(f"{k}={getattr(checkpoint_cfg.data, k)}" for k in SAMPLING_KEYS))
    data = dataclasses.replace(checkpoint_cfg.data,
                               **{k: getattr(user.data, k) for k in INFERENCE_KEYS})
    return dataclasses.replace(checkpoint_cfg, data=data)


def _labelmap(cfg: Config, path: Optional[str]):
    from avadet.io import read_labelmap

    if path:
        return read_labelmap(path)  # asked for explicitly: a bad file is an error
    resolved = resolve_path(cfg.data.root, cfg.data.labelmap)
    if resolved is None or not resolved.is_file():
        logger.info("label map %s not found: classes are shown by id", resolved)
        return None
    try:
        return read_labelmap(resolved)
    except FormatError as exc:
        logger.warning("label map unreadable (%s): classes are shown by id", exc)
        return None


def run(args: argparse.Namespace) -> int:
    from avadet.detect.outputs import (
        prediction_table,
        summary,
        top_actions,
        write_json,
        write_predictions_csv,
    )
    from avadet.detect.runner import ClipDetector, ClipSettings
    from avadet.engine.checkpoint import load_trained_model
    from avadet.persons import CsvPersonBoxes, detector_from_args

    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    video = Path(args.video)
    if not video.is_file():
        raise FormatError(video, "video not found")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = video.stem
    handler = logging.FileHandler(out_dir / f"{stem}.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_logger = logging.getLogger("avadet")
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    try:
        model, ckpt_cfg, class_ids = load_trained_model(args.checkpoint, device=args.device)
        cfg = inference_config(ckpt_cfg, args.config, args.overrides)
        labelmap = _labelmap(cfg, args.labelmap)
        threshold = (args.person_threshold if args.person_threshold is not None
                     else cfg.data.test_detection_score)
        persons = detector_from_args(args, score_threshold=threshold, device=args.device)
        video_id = args.video_id or stem
        if isinstance(persons, CsvPersonBoxes) and not persons.has_video(video_id):
            some = ", ".join(persons.video_ids[:5]) or "none"
            raise AvadetError(f"{persons.path}: no boxes for video id {video_id!r} (ids in the "
                              f"file: {some}{' ...' if len(persons.video_ids) > 5 else ''}); "
                              "pass --video-id")
        names = labelmap.names if labelmap is not None else {}

        def labels_of(row):
            return [f"{names.get(c, str(c))} {s:.2f}"
                    for c, s in top_actions(row, class_ids, args.show_top)]

        runner = ClipDetector(model, ClipSettings.from_config(cfg), class_ids, persons,
                              interval=args.interval, start=args.start, device=args.device)
        annotated = None if args.no_video else out_dir / f"{stem}_annotated.mp4"
        logger.info("detect %s: checkpoint %s, persons: %s", video, args.checkpoint,
                    persons.describe())
        result = runner.run(video, video_id=video_id, timestamp_offset=args.timestamp_offset,
                            annotated_path=annotated, labels_of=labels_of,
                            progress=not args.no_progress)
        csv_path = write_predictions_csv(
            out_dir / f"{stem}.csv",
            prediction_table(result, timestamp_offset=args.timestamp_offset, top_k=args.top_k),
        )
        doc = summary(result, labelmap=labelmap, timestamp_offset=args.timestamp_offset,
                      show_top=args.show_top,
                      extra={"checkpoint": str(args.checkpoint), "persons": persons.describe(),
                             "person_threshold": threshold, "interval": args.interval,
                             "start": args.start})
        json_path = write_json(out_dir / f"{stem}.json", doc)
        t = result.timings
        people = sum(len(k.boxes) for k in result.keyframes)
        line = (f"{result.num_frames} frames ({result.duration:.1f} s at {result.fps:.3g} fps), "
                f"{len(result.keyframes)} keyframes, {people} person boxes; "
                f"{result.duration / max(t['total'], 1e-9):.2f} s of video per second "
                f"(decode {t['decode']:.1f} s, persons {t['persons']:.1f} s, "
                f"actions {t['actions']:.1f} s, render {t['render']:.1f} s)")
        logger.info(line)
        print(line)
        for path in (csv_path, json_path, annotated):
            if path is not None:
                print(f"wrote {path}")
        return 0
    finally:
        root_logger.removeHandler(handler)
        handler.close()


