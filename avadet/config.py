"""Typed configuration: YAML files loaded into dataclasses, with ``key=value`` overrides.

This module only describes and validates settings. Each component turns its section into
plain arguments in exactly one place (``build_model(cfg)``, ``build_dataset(cfg, split)``, ...);
no config object reaches inside a module.

A YAML file may start with ``_base_: other.yaml`` (relative to the file) to inherit settings.
Overrides use dotted keys: ``model.alpha=8 solver.base_lr=0.05 data.root=/data/ava``.
An unknown key or a value of the wrong type is a :class:`~avadet.errors.ConfigError` that
names the key and lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

import yaml

from avadet.errors import ConfigError


@dataclass
class DataConfig:
    """Where the dataset lives and how clips are sampled around keyframes."""

    root: str = ""  # dataset root; relative paths below are resolved against it
    source: str = "frames"  # "frames" (JPEG folders) or "video" (decode mp4/mkv with PyAV)
    frames_dir: str = "frames"  # frames/<video_id>/<video_id>_%06d.jpg, 1-based
    videos_dir: str = "videos"  # videos/<video_id>.<ext>, already cut to the segment
    frame_template: str = "{video_id}_{index:06d}.jpg"  # index is 1-based
    labelmap: str = "annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    train_annotations: str = "annotations/ava_train_v2.2.csv"
    val_annotations: str = "annotations/ava_val_v2.2.csv"
    train_exclusions: str = "annotations/ava_train_excluded_timestamps_v2.2.csv"
    val_exclusions: str = "annotations/ava_val_excluded_timestamps_v2.2.csv"
    train_boxes: str = "annotations/ava_train_predicted_boxes.csv"
    val_boxes: str = "annotations/ava_val_predicted_boxes.csv"
    # Optional subset of the label map's classes to train on (MMAction2's custom_classes).
    classes: list[int] = field(default_factory=list)
    # Time line of the media: frame k (0-based) shows time segment_start + k / fps.
    fps: float = 30.0
    segment_start: float = 900.0  # seconds; the first frame of the cut video
    segment_end: float = 1800.0
    # Sampling around a keyframe (PySlowFast's NUM_FRAMES / SAMPLING_RATE for the Fast pathway).
    num_frames: int = 32  # frames fed to the Fast pathway (alpha * T)
    sampling_rate: int = 2  # stride of the Fast pathway's frames (tau / alpha)
    # Boxes: training uses gt boxes, optionally plus detections >= train_detection_score;
    # testing uses detections >= test_detection_score (PySlowFast's AVA defaults).
    train_use_detections: bool = False
    train_detection_score: float = 0.9
    test_detection_score: float = 0.8
    # Transforms.
    train_jitter_scales: list[int] = field(default_factory=lambda: [256, 320])
    train_crop_size: int = 224
    test_short_side: int = 256
    train_flip: bool = True
    train_color_jitter: bool = True
    mean: list[float] = field(default_factory=lambda: [0.45, 0.45, 0.45])
    std: list[float] = field(default_factory=lambda: [0.225, 0.225, 0.225])
    num_workers: int = 2


@dataclass
class ModelConfig:
    """Architecture of the backbone and head (see :func:`avadet.models.build_model`)."""

    arch: str = "slowfast"  # "slowfast" or "slow"
    depth: int = 50  # 50 or 101
    width_per_group: int = 64  # 64 for the full model; smaller for CPU presets
    alpha: int = 4  # frame-rate ratio Fast/Slow
    beta_inv: int = 8  # channel ratio Slow/Fast
    fusion_conv_channel_ratio: int = 2  # lateral outputs = ratio * C_fast
    fusion_kernel_size: int = 7  # temporal kernel of the time-strided conv lateral
    lateral: str = "conv"  # "conv" (time-strided convolution), "sample", "ttoc"
    fusion: str = "concat"  # "concat" or "sum"
    # Temporal kernel of conv a in res2..res5, per pathway; a per-block list inside a stage
    # is allowed (PySlowFast R101_50_50 uses kernels only in the first 6 blocks of res4).
    slow_temporal_kernels: list[Any] = field(default_factory=lambda: [1, 1, 3, 3])
    fast_temporal_kernels: list[Any] = field(default_factory=lambda: [3, 3, 3, 3])
    res5_dilation: int = 2  # 2 with spatial stride 1 for detection; 1 (stride 2) for Kinetics
    # Slow-pathway blocks (per stage res2..res5) followed by a non-local block.
    nonlocal_blocks: list[list[int]] = field(default_factory=lambda: [[], [], [], []])
    nonlocal_pool: list[int] = field(default_factory=lambda: [2, 2, 2])  # max pool on phi, g
    nonlocal_instantiation: str = "dot_product"  # or "softmax"
    head: str = "ava"  # "ava" (RoI head) or "kinetics" (global pooling)
    num_classes: int = 80
    dropout: float = 0.5
    roi_output_size: int = 7
    roi_sampling_ratio: int = 0
    roi_aligned: bool = True
    roi_spatial_scale: float = 0.0625  # 1 / feature stride (16 with the dilated res5)
    head_activation: str = "sigmoid"


@dataclass
class SolverConfig:
    """Optimisation (PySlowFast's AVA recipe by default)."""

    optimizer: str = "sgd"  # "sgd" (momentum) or "adamw"
    base_lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-7
    bn_weight_decay: float = 0.0  # weight decay of BatchNorm weights and biases (PySlowFast: 0)
    schedule: str = "steps"  # "steps" (PySlowFast's steps_with_relative_lrs) or "cosine"
    steps: list[float] = field(default_factory=lambda: [0, 10, 15, 20])  # epochs
    # lr relative to base_lr from each step on; empty: lr_decay ** i for step i.
    lrs: list[float] = field(default_factory=list)
    lr_decay: float = 0.1
    cosine_end_lr: float = 0.0
    max_epoch: float = 20
    max_iters: int = 0  # > 0: stop after this many iterations (the schedule keeps max_epoch)
    warmup_epochs: float = 5.0
    warmup_start_lr: float = 0.000125
    batch_size: int = 64  # global batch (summed over processes)
    freeze_bn: bool = False  # use frozen BN statistics (PySlowFast's detection fine-tuning)
    # > 0: re-estimate BN statistics on this many training batches before each evaluation
    # and checkpoint at an epoch end (PySlowFast's BN.USE_PRECISE_STATS / NUM_BATCHES_PRECISE).
    precise_bn_batches: int = 0
    clip_grad_norm: float = 0.0


@dataclass
class TrainConfig:
    output_dir: str = "output"
    init_checkpoint: str = ""  # e.g. a Kinetics checkpoint; the head is left fresh
    checkpoint_every_iters: int = 500
    keep_checkpoints: int = 0  # > 0: keep only the newest N checkpoint_iter_*.pt (0: all)
    eval_every_epochs: float = 1.0
    log_every_iters: int = 10
    seed: int = 0
    amp: bool = True  # automatic mixed precision on CUDA (ignored on the CPU)
    device: str = "auto"  # "auto", "cpu", "cuda"


@dataclass
class TestConfig:
    checkpoint: str = ""
    batch_size: int = 8
    protocol: str = "activitynet2019"
    output_csv: str = "predictions.csv"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)


# ---------------------------------------------------------------------------------------------
# Loading and validation


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin in (list, Sequence, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp,) = typing.get_args(tp)[:1] or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of settings, got {value!r}")
        return _from_dict(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads 1e-3 (no dot, no exponent sign) as a string; take it as the number.
            try:
                number = float(value)
            except ValueError:
                number = None
            if number is not None and value.strip().lower() not in ("nan", "inf", "-inf", "+inf"):
                return number
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. the override data.root=2024 parsed as a YAML number
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"unknown key '{full}'; valid keys here: {', '.join(names)}")
        kwargs[key] = _coerce(value, hints[key], full)
    return cls(**kwargs)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: _base_ cycle")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    base = data.pop("_base_", None)
    if base:
        data = _merge(_read_yaml(path.parent / base, seen + (path,)), data)
    return data


def parse_overrides(overrides: Sequence[str]) -> dict:
    """``["model.alpha=8", "data.root=/x"]`` -> nested dict; values parsed as YAML scalars."""
    out: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form section.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = value
    return out


def load_config(
    path: Union[str, Path, None] = None, overrides: Sequence[str] = ()
) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply overrides."""
    data = _read_yaml(Path(path)) if path else {}
    data = _merge(data, parse_overrides(overrides))
    return _from_dict(Config, data)


def with_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """``cfg`` with ``section.key=value`` overrides applied (validated as in a file)."""
    return _from_dict(Config, _merge(config_to_dict(cfg), parse_overrides(overrides)))


def config_from_dict(data: dict) -> Config:
    return _from_dict(Config, data)


def config_to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
