"""Typed configuration: YAML files loaded into dataclasses, with ``key=value`` overrides.

This module only describes and validates settings. Each component turns its section into
plain arguments in exactly one place (``build_model(cfg)``, ``build_dataset(cfg, split)``, ...);
no config object reaches inside a module.

A YAML file may start with ``_base_: other.yaml`` (relative to the file) to inherit settings.
Overrides use dotted keys: ``model.alpha=8 solver.base_lr=0.05 data.root=/data/ava``.
An unknown key, a value of the wrong type or out of its range (:data:`RULES`, checked when a
config is loaded) is a :class:`~avadet.errors.ConfigError` that names the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, Union

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
    # Frames added to the keyframe's centre index before sampling; MMAction2's AVA loader
    # centres its clips one frame later than PySlowFast (it adds its start index twice): 1.
    clip_center_offset: int = 0
    # Boxes: training uses gt boxes, optionally plus detections >= train_detection_score;
    # testing uses detections >= test_detection_score (PySlowFast's AVA defaults).
    train_use_detections: bool = False
    train_detection_score: float = 0.9
    test_detection_score: float = 0.8
    # A keyframe whose detections all score below test_detection_score keeps its best one
    # (MMAction2's AVADataset: threshold min(person_det_score_thr, max score)).
    test_keep_best_detection: bool = False
    # Transforms.
    train_jitter_scales: list[int] = field(default_factory=lambda: [256, 320])
    train_crop_size: int = 224
    test_short_side: int = 256
    # Size of the resized frame: "floor" (PySlowFast: long side floored from the aspect ratio)
    # or "round" (MMAction2 / mmcv rescale_size: each side int(side * scale + 0.5)).
    resize_rounding: str = "floor"
    train_flip: bool = True
    train_color_jitter: bool = True
    mean: list[float] = field(default_factory=lambda: [0.45, 0.45, 0.45])
    std: list[float] = field(default_factory=lambda: [0.225, 0.225, 0.225])
    # How boxes follow a resize: "per_axis" (x by W'/W, y by H'/H) or "long_side" (all four
    # by the long side's ratio, PySlowFast's scale_boxes; up to 0.5 px off in the other axis).
    box_scaling: str = "per_axis"
    # Test boxes: "last_pixel" clips them to [0, W-1] x [0, H-1] of the frame and of the
    # resized input (PySlowFast's clip_boxes_to_image); "none" scales them as they are
    # (MMAction2: x2 = 1.0 becomes the input's width W').
    box_clipping: str = "last_pixel"
    num_workers: int = 2


@dataclass
class ModelConfig:
    """Architecture of the backbone and head (see :func:`avadet.models.build_model`)."""

    arch: str = "slowfast"  # "slowfast", "slow" or "fast" (the Fast pathway alone)
    depth: int = 50  # 50 or 101
    width_per_group: int = 64  # 64 for the full model; smaller for CPU presets
    alpha: int = 4  # frame-rate ratio Fast/Slow
    beta_inv: int = 8  # channel ratio Slow/Fast
    fusion_conv_channel_ratio: int = 2  # lateral outputs = ratio * C_fast
    fusion_kernel_size: int = 7  # temporal kernel of the time-strided conv lateral
    lateral: str = "conv"  # "conv" (time-strided convolution), "sample", "ttoc"
    lateral_norm: bool = True  # BN + ReLU after the conv lateral (MMAction2: none, False)
    fusion: str = "concat"  # "concat" or "sum"
    # Slow frames of a single clip: "linspace" (PySlowFast, pytorchvideo) or "stride"
    # (MMAction2: every alpha-th frame).
    slow_frames: str = "linspace"
    # Temporal kernel of conv a in res2..res5, per pathway; a per-block list inside a stage
    # is allowed (PySlowFast R101_50_50 uses kernels only in the first 6 blocks of res4).
    slow_temporal_kernels: list[Any] = field(default_factory=lambda: [1, 1, 3, 3])
    fast_temporal_kernels: list[Any] = field(default_factory=lambda: [3, 3, 3, 3])
    res5_dilation: int = 2  # 2 with spatial stride 1 for detection; 1 (stride 2) for Kinetics
    # Spatial stride of res5; 0: derived from res5_dilation (1 if dilated, else 2). MMAction2's
    # AVA models: stride 1 with dilation 1.
    res5_stride: int = 0
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
    # Initialisation for training from scratch (avadet.models.weight_init): "pyslowfast"
    # (He normal fan-out convs, final BN of each block at 0, classifier std fc_init_std) or
    # "torch" (PyTorch's layer defaults, avadet's behaviour before; kept to reproduce runs).
    init: str = "pyslowfast"
    fc_init_std: float = 0.01
    zero_init_final_bn: bool = True


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
    # CPU inference through the deployment form of the model (BatchNorm folded, channels-last
    # 3D, inference mode; avadet.models.deploy): the same scores within 1e-4, faster.
    deploy: bool = True
    # "bf16": bfloat16 autocast on a CPU with native bf16 (needs deploy); scores move by
    # ~5e-3 (docs/benchmarks.md). "fp32": the default.
    precision: str = "fp32"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)


# ---------------------------------------------------------------------------------------------
# Ranges: every setting's allowed values, checked once when a config is loaded, so that a bad
# value is an error naming its key rather than a failure deep inside data loading or training.


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ints(lo: int, hi: int = 2**31 - 1) -> tuple[str, Callable[[Any], bool]]:
    text = f"an integer >= {lo}" if hi == 2**31 - 1 else f"an integer in [{lo}, {hi}]"
    return text, lambda v: _is_int(v) and lo <= v <= hi


def _floats(lo: float, *, above: bool = False, hi: float = math.inf,
            below: bool = False) -> tuple[str, Callable[[Any], bool]]:
    low = "" if lo == -math.inf else (f" > {lo}" if above else f" >= {lo}")
    high = "" if hi == math.inf else (f" and < {hi}" if below else f" and <= {hi}")
    return f"a finite number{low}{high}", lambda v: (
        _is_num(v) and (v > lo if above else v >= lo) and (v < hi if below else v <= hi))


def _choices(*names: Any) -> tuple[str, Callable[[Any], bool]]:
    return f"one of {', '.join(map(str, names))}", lambda v: v in names


def _list_of(check: tuple[str, Callable[[Any], bool]], length: int = -1,
             ) -> tuple[str, Callable[[Any], bool]]:
    size = f"{length} " if length >= 0 else ""
    return (f"a list of {size}values, each {check[0]}",
            lambda v: isinstance(v, list) and (length < 0 or len(v) == length)
            and all(check[1](x) for x in v))


_POSITIVE = _ints(1)
_COUNT = _ints(0)
_PROBABILITY = _floats(0.0, hi=1.0)
_NON_NEGATIVE = _floats(0.0)
# A temporal kernel per stage: one int, or one per block of the stage.
_KERNELS = ("a list of 4 entries, each a positive integer or a list of them",
            lambda v: isinstance(v, list) and len(v) == 4 and all(
                _POSITIVE[1](k) or (isinstance(k, list) and k and all(_POSITIVE[1](x) for x in k))
                for k in v))

RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "data.source": _choices("frames", "video"),
    "data.classes": _list_of(_ints(-(2**31) + 1)),
    "data.fps": _floats(0.0, above=True),
    "data.segment_start": _floats(0.0),
    "data.segment_end": _floats(0.0, above=True),
    "data.num_frames": _POSITIVE,
    "data.sampling_rate": _POSITIVE,
    "data.clip_center_offset": _ints(-(2**31) + 1),
    # Compared with detector scores, which person-box files do not limit to [0, 1] (the
    # data doctor reports a threshold above every score).
    "data.train_detection_score": _floats(-math.inf),
    "data.test_detection_score": _floats(-math.inf),
    "data.train_jitter_scales": _list_of(_POSITIVE, 2),
    "data.train_crop_size": _POSITIVE,
    "data.test_short_side": _COUNT,  # 0: the frames' own short side
    "data.resize_rounding": _choices("floor", "round"),
    "data.mean": _list_of(_floats(-math.inf), 3),
    "data.std": _list_of(_floats(0.0, above=True), 3),
    "data.box_scaling": _choices("per_axis", "long_side"),
    "data.box_clipping": _choices("last_pixel", "none"),
    "data.num_workers": _COUNT,
    "model.arch": _choices("slowfast", "slow", "fast"),
    "model.depth": _choices(50, 101),
    "model.width_per_group": _POSITIVE,
    "model.alpha": _POSITIVE,
    "model.beta_inv": _POSITIVE,
    "model.fusion_conv_channel_ratio": _POSITIVE,
    "model.fusion_kernel_size": _POSITIVE,
    "model.lateral": _choices("conv", "sample", "ttoc"),
    "model.fusion": _choices("concat", "sum"),
    "model.slow_frames": _choices("linspace", "stride"),
    "model.slow_temporal_kernels": _KERNELS,
    "model.fast_temporal_kernels": _KERNELS,
    "model.res5_dilation": _POSITIVE,
    "model.res5_stride": _ints(0, 2),  # 0: derived from res5_dilation
    "model.nonlocal_blocks": _list_of(_list_of(_COUNT), 4),
    "model.nonlocal_pool": _list_of(_POSITIVE, 3),
    "model.nonlocal_instantiation": _choices("dot_product", "softmax"),
    "model.head": _choices("ava", "kinetics"),
    "model.num_classes": _POSITIVE,
    "model.dropout": _floats(0.0, hi=1.0, below=True),
    "model.roi_output_size": _POSITIVE,
    "model.roi_sampling_ratio": _COUNT,
    "model.roi_spatial_scale": _floats(0.0, above=True),
    "model.head_activation": _choices("sigmoid", "softmax", "none"),
    "model.init": _choices("pyslowfast", "torch"),
    "model.fc_init_std": _floats(0.0, above=True),
    "solver.optimizer": _choices("sgd", "adamw"),
    "solver.base_lr": _NON_NEGATIVE,
    "solver.momentum": _PROBABILITY,
    "solver.weight_decay": _NON_NEGATIVE,
    "solver.bn_weight_decay": _NON_NEGATIVE,
    "solver.schedule": _choices("steps", "cosine"),
    "solver.steps": _list_of(_NON_NEGATIVE),
    "solver.lrs": _list_of(_NON_NEGATIVE),
    "solver.lr_decay": _NON_NEGATIVE,
    "solver.cosine_end_lr": _NON_NEGATIVE,
    "solver.max_epoch": _floats(0.0, above=True),
    "solver.max_iters": _COUNT,
    "solver.warmup_epochs": _NON_NEGATIVE,
    "solver.warmup_start_lr": _NON_NEGATIVE,
    "solver.batch_size": _POSITIVE,
    "solver.precise_bn_batches": _COUNT,
    "solver.clip_grad_norm": _NON_NEGATIVE,
    "train.checkpoint_every_iters": _POSITIVE,
    "train.keep_checkpoints": _COUNT,
    "train.eval_every_epochs": _NON_NEGATIVE,
    "train.log_every_iters": _POSITIVE,
    "train.seed": _ints(0, 2**32 - 1),  # NumPy's seeds are 32-bit
    "train.device": _choices("auto", "cpu", "cuda"),
    "test.batch_size": _POSITIVE,
    "test.precision": _choices("fp32", "bf16"),
}
# Settings whose every value of their type is allowed: paths and names (checked when used:
# a configured file that does not exist is an error naming its key, see DatasetFiles).
FREE = {
    "data.root", "data.frames_dir", "data.videos_dir", "data.frame_template", "data.labelmap",
    "data.train_annotations", "data.val_annotations", "data.train_exclusions",
    "data.val_exclusions", "data.train_boxes", "data.val_boxes", "data.train_use_detections",
    "data.test_keep_best_detection",
    "data.train_flip", "data.train_color_jitter", "model.roi_aligned", "model.lateral_norm",
    "model.zero_init_final_bn",
    "solver.nesterov", "solver.freeze_bn", "train.output_dir", "train.init_checkpoint", "train.amp",
    "test.checkpoint", "test.protocol", "test.output_csv", "test.deploy",
}


def validate(cfg: Config) -> Config:
    """Raise ConfigError naming the first setting outside its range (:data:`RULES`)."""
    for key, (allowed, ok) in RULES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not ok(value):
            raise ConfigError(f"{key}: must be {allowed}, got {value!r}")
    data = cfg.data
    if data.segment_end <= data.segment_start:
        raise ConfigError(f"data.segment_end ({data.segment_end}) must be greater than "
                          f"data.segment_start ({data.segment_start})")
    low, high = data.train_jitter_scales
    if low > high:
        raise ConfigError(f"data.train_jitter_scales: must be [min, max], got {[low, high]}")
    return cfg


# ---------------------------------------------------------------------------------------------
# Loading and validation

# A config is a few kB; a bigger file is not one, and /dev/zero must not be read to the end.
MAX_CONFIG_BYTES = 10 * 1024 * 1024


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


def _read_text(path: Path) -> str:
    """The config file's text: a regular UTF-8 file of at most MAX_CONFIG_BYTES."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"cannot read config {path}: is a directory")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"cannot read config {path}: not a regular file")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 2**20} MB: not a config")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None


def _yaml_error(path: Path, exc: yaml.YAMLError) -> ConfigError:
    """One line: PyYAML's messages span several, with a caret drawing."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ConfigError(f"{where}: invalid YAML: {problem}")


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: _base_ cycle")
    text = _read_text(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    base = data.pop("_base_", None)
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{path}: _base_ must be a file name, got {base!r}")
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
        except (yaml.YAMLError, RecursionError):
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
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"config path must be a file name, got {path!r}")
    data = _read_yaml(Path(path)) if path else {}
    return _checked(lambda: _merge(data, parse_overrides(overrides)))


def with_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """``cfg`` with ``section.key=value`` overrides applied (validated as in a file)."""
    return _checked(lambda: _merge(config_to_dict(cfg), parse_overrides(overrides)))


def config_from_dict(data: dict) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    return _checked(lambda: data)


def _checked(make: Callable[[], dict]) -> Config:
    """The validated Config of ``make()``'s settings; nesting too deep to merge or check is a
    ConfigError too (a deeply nested override or YAML value)."""
    try:
        return validate(_from_dict(Config, make()))
    except RecursionError:
        raise ConfigError("config values nested too deeply") from None


def config_to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
