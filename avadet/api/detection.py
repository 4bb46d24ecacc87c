"""Action detection on a video file with a trained checkpoint."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from avadet.api._config import ConfigLike, as_config
from avadet.api._logs import log_to_file
from avadet.config import Config, with_overrides
from avadet.data import DatasetFiles
from avadet.detect import ClipDetector, ClipSettings, DetectResult
from avadet.detect.outputs import (
    prediction_table,
    summary,
    top_actions,
    write_json,
    write_predictions_csv,
)
from avadet.detect.runner import (
    DEFAULT_BATCH_KEYFRAMES,
    DEFAULT_DECODE_THREAD,
    DEFAULT_PERSONS_THREAD,
    probe_video,
)
from avadet.engine.build import dataset_files
from avadet.engine.checkpoint import inference_config, override_keys
from avadet.engine.export import onnxruntime_model
from avadet.engine.inference import inference_model
from avadet.engine.loading import LoadedModel, load_model
from avadet.errors import AvadetError, ConfigError, FormatError
from avadet.io import LabelMap, read_labelmap
from avadet.persons import CsvPersonBoxes, PersonDetector, PersonDetectorChoice

logger = logging.getLogger("avadet.detect")
PathLike = Union[str, Path]


@dataclass
class DetectOutputs:
    """What :func:`detect_video` found and wrote: ``csv`` (AVA prediction rows), ``json``
    (per keyframe and person: track id, box, top actions), ``annotated`` (the video with boxes
    and actions drawn; None when not asked for), ``log`` (the run's log file)."""

    result: DetectResult
    csv: Path
    json: Path
    annotated: Optional[Path]
    log: Path
    persons: str

    def speed_line(self) -> str:
        """One line: what was processed and how fast, stage by stage."""
        r, t = self.result, self.result.timings
        people = sum(len(k.boxes) for k in r.keyframes)
        return (f"{r.num_frames} frames ({r.duration:.1f} s at {r.fps:.3g} fps), "
                f"{len(r.keyframes)} keyframes, {people} person boxes; "
                f"{r.duration / max(t['total'], 1e-9):.2f} s of video per second "
                f"(decode {t['decode']:.1f} s, persons {t['persons']:.1f} s, "
                f"actions {t['actions']:.1f} s, render {t['render']:.1f} s)")


def run_config(loaded: LoadedModel, config: Optional[ConfigLike],
               overrides: Sequence[str] = ()) -> Config:
    """The config a checkpoint runs with: ``config`` (or, without one, the checkpoint's own
    with ``overrides``) under the checkpoint's model and its authors' preprocessing, where an
    override wins (:func:`~avadet.engine.checkpoint.inference_config`); overruled settings
    are logged."""
    trained = loaded.config
    user = as_config(config, overrides) if config is not None else with_overrides(trained, overrides)
    cfg, ignored = inference_config(trained, user, authored=loaded.authored,
                                    explicit=override_keys(overrides))
    logger.info(loaded.describe())
    if ignored:
        logger.warning("the checkpoint decides %s: the config's values are not used "
                       "(override one with key=value)", ", ".join(ignored))
    return cfg


def _labelmap(files: DatasetFiles, path: Optional[PathLike]) -> Optional[LabelMap]:
    if path:
        return read_labelmap(path)  # asked for explicitly: a bad file is an error
    resolved = files.labelmap
    if resolved is None or not resolved.is_file():
        logger.info("label map %s not found: classes are shown by id", resolved)
        return None
    try:
        return read_labelmap(resolved)
    except FormatError as exc:
        logger.warning("label map unreadable (%s): classes are shown by id", exc)
        return None


def _check_csv_boxes(persons: PersonDetector, video_id: str) -> None:
    if isinstance(persons, CsvPersonBoxes) and not persons.has_video(video_id):
        some = ", ".join(persons.video_ids[:5]) or "none"
        more = " ..." if len(persons.video_ids) > 5 else ""
        raise AvadetError(f"{persons.path}: no boxes for video id {video_id!r} (ids in the "
                          f"file: {some}{more}); give the video id the file uses")


# Keyframes closer than one frame at 100 fps only repeat a frame's detections and make a run
# take minutes; a day apart is the longest that still means something. ``avadet detect``
# checks the same limits while parsing its flags.
MIN_INTERVAL = 0.01
MAX_INTERVAL = 86400.0
MAX_SECONDS = 1e7  # start and timestamp offset: about 115 days
BACKENDS = ("torch", "onnxruntime")  # what runs the action model


def _number(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"detect: {name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ConfigError(f"detect: {name} must be a finite number between {low:g} and "
                          f"{high:g}, got {value!r}")
    return number


def _count(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"detect: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_options(*, interval, start, top_k, show_top, person_threshold,
                  timestamp_offset) -> None:
    """Raise :class:`ConfigError` for a keyframe setting that is not finite or out of range
    (NaN, inf, a negative count, keyframes closer than ``MIN_INTERVAL``)."""
    _number("interval", interval, MIN_INTERVAL, MAX_INTERVAL)
    _number("start", start, 0.0, MAX_SECONDS)
    _number("timestamp_offset", timestamp_offset, 0.0, MAX_SECONDS)
    if person_threshold is not None:
        _number("person_threshold", person_threshold, 0.0, 1.0)
    _count("top_k", top_k, 0)
    _count("show_top", show_top, 0)


@dataclass
class _Run:
    """Where one detection run writes: ``<out>/<stem>.{csv,json,log}`` and the video."""

    out_dir: Path
    stem: str

    def path(self, suffix: str) -> Path:
        return self.out_dir / f"{self.stem}{suffix}"


def detect_video(
    video: PathLike,
    checkpoint: PathLike,
    out_dir: PathLike,
    *,
    config: Optional[ConfigLike] = None,
    overrides: Sequence[str] = (),
    persons: Union[PersonDetector, PersonDetectorChoice, None] = None,
    person_threshold: Optional[float] = None,
    labelmap: Optional[PathLike] = None,
    interval: float = 1.0,
    start: float = 0.0,
    top_k: int = 0,
    show_top: int = 3,
    video_id: Optional[str] = None,
    timestamp_offset: float = 0.0,
    write_video: bool = True,
    arch: Optional[str] = None,
    device: str = "cpu",
    progress: bool = True,
    deploy: Optional[bool] = None,
    precision: Optional[str] = None,
    backend: str = "torch",
    batch_keyframes: int = DEFAULT_BATCH_KEYFRAMES,
    persons_thread: bool = DEFAULT_PERSONS_THREAD,
    decode_thread: bool = DEFAULT_DECODE_THREAD,
) -> DetectOutputs:
    """Detect people and their actions on ``video`` with the model of ``checkpoint``.

    Keyframes every ``interval`` seconds from ``start``; person boxes from ``persons`` (a
    detector, or the choice of one to build at ``person_threshold``, default the config's
    ``data.test_detection_score``; default torchvision's Faster R-CNN); action scores per box; ids kept across keyframes by IoU.
    Writes ``<stem>.csv`` (AVA rows: every class, or the ``top_k`` best), ``<stem>.json``,
    ``<stem>_annotated.mp4`` (``write_video``) and ``<stem>.log`` into ``out_dir``.
    ``checkpoint``: any format :func:`avadet.engine.loading.load_model` reads (``arch``: the
    architecture of a Caffe2 pickle); its authors' preprocessing is used.
    ``batch_keyframes``, ``persons_thread``, ``decode_thread``: how the pass uses the CPU
    (:class:`~avadet.detect.ClipDetector`; the scores do not depend on them).
    ``video_id`` and ``timestamp_offset`` make the CSV's keys (and those a CSV person-box
    source is looked up by), e.g. offset 900 for a cut AVA segment.
    ``deploy`` / ``precision``: the action model's CPU inference path
    (:func:`avadet.engine.inference.inference_model`); None: the config's ``test.deploy``
    (default True: BatchNorm folded, channels-last; same scores within 1e-4) and
    ``test.precision`` (default ``"fp32"``; ``"bf16"`` only by request). ``backend``:
    ``"torch"``, or ``"onnxruntime"`` (the model exported to ONNX and run by ONNX Runtime on
    the CPU; ``pip install 'avadet[export]'``; scores within 1e-4 of torch's).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"detect: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "onnxruntime" and device != "cpu":
        raise ConfigError("detect: the onnxruntime backend runs on the CPU (--device cpu)")
    check_options(interval=interval, start=start, top_k=top_k, show_top=show_top,
                  person_threshold=person_threshold, timestamp_offset=timestamp_offset)
    video = Path(video)
    if not video.is_file():
        raise FormatError(video, "video not found")
    # Before the checkpoint, the person boxes or the output folder: a file that is no video
    # is reported as such, not as whatever the next step trips over.
    probe_video(video)
    run = _Run(Path(out_dir), video.stem)
    run.out_dir.mkdir(parents=True, exist_ok=True)
    with log_to_file(run.path(".log")):
        return _detect(video, checkpoint, run, config=config, overrides=overrides,
                       persons=persons, person_threshold=person_threshold, labelmap=labelmap,
                       interval=interval, start=start, top_k=top_k, show_top=show_top,
                       video_id=video_id or video.stem, timestamp_offset=timestamp_offset,
                       write_video=write_video, arch=arch, device=device, progress=progress,
                       deploy=deploy, precision=precision, backend=backend,
                       speed={"batch_keyframes": batch_keyframes,
                              "persons_thread": persons_thread,
                              "decode_thread": decode_thread})


def _detect(video: Path, checkpoint: PathLike, run: _Run, *, config, overrides, persons,
            person_threshold, labelmap, interval, start, top_k, show_top, video_id,
            timestamp_offset, write_video, arch, device, progress, deploy,
            precision, backend, speed) -> DetectOutputs:
    loaded = load_model(checkpoint, arch=arch, device=device)
    class_ids = loaded.class_ids
    cfg = run_config(loaded, config, overrides)
    if backend == "onnxruntime":
        model = onnxruntime_model(loaded.model, frames=cfg.data.num_frames,
                                  short_side=cfg.data.test_short_side)
    else:
        model = inference_model(
            loaded.model, device, deploy=cfg.test.deploy if deploy is None else deploy,
            precision=cfg.test.precision if precision is None else precision, consume=True)
    names_map = _labelmap(dataset_files(cfg.data), labelmap)
    threshold = person_threshold if person_threshold is not None else cfg.data.test_detection_score
    if not isinstance(persons, PersonDetector):
        persons = (persons or PersonDetectorChoice()).build(score_threshold=threshold,
                                                            device=device)
    _check_csv_boxes(persons, video_id)
    names = names_map.names if names_map is not None else {}

    def labels_of(row):
        return [f"{names.get(c, str(c))} {s:.2f}" for c, s in top_actions(row, class_ids, show_top)]

    # The rate the model was trained at is the checkpoint's (AVA: 30 fps), not the video's.
    settings = ClipSettings.from_config(cfg, trained_fps=loaded.config.data.fps)
    runner = ClipDetector(model, settings, class_ids, persons,
                          interval=interval, start=start, device=device, **speed)
    annotated = run.path("_annotated.mp4") if write_video else None
    logger.info("detect %s: checkpoint %s, persons: %s", video, checkpoint, persons.describe())
    result = runner.run(video, video_id=video_id, timestamp_offset=timestamp_offset,
                        annotated_path=annotated, labels_of=labels_of, progress=progress)
    csv_path = write_predictions_csv(
        run.path(".csv"),
        prediction_table(result, timestamp_offset=timestamp_offset, top_k=top_k))
    doc = summary(result, labelmap=names_map, timestamp_offset=timestamp_offset,
                  show_top=show_top,
                  extra={"checkpoint": str(checkpoint), "checkpoint_source": loaded.source,
                         "preprocessing": {k: getattr(cfg.data, k) for k in loaded.authored},
                         "persons": persons.describe(),
                         "person_threshold": threshold, "interval": interval, "start": start})
    outputs = DetectOutputs(result, csv_path, write_json(run.path(".json"), doc), annotated,
                            run.path(".log"), persons.describe())
    logger.info(outputs.speed_line())
    return outputs
