"""The one place where a :class:`~avadet.config.ModelConfig` becomes model arguments, and the
translation of PySlowFast's config (the ``cfg`` YAML stored in ``.pyth`` checkpoints)."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

import yaml

from avadet.config import Config, ModelConfig
from avadet.errors import ConfigError
from avadet.models.heads import ActionModel, AVAHead, KineticsHead
from avadet.models.slowfast import FastOnly, SlowFast, SlowOnly
from avadet.models.weight_init import init_weights


def _res5(cfg: ModelConfig) -> dict[str, int]:
    # Detection keeps res5 at stride 16 by dilating it; Kinetics strides it to 32. An explicit
    # res5_stride wins (MMAction2's AVA models: stride 1, no dilation).
    if cfg.res5_stride > 0:
        return {"res5_stride": cfg.res5_stride, "res5_dilation": cfg.res5_dilation}
    if cfg.res5_dilation > 1:
        return {"res5_stride": 1, "res5_dilation": cfg.res5_dilation}
    return {"res5_stride": 2, "res5_dilation": 1}


def build_backbone(cfg: ModelConfig) -> Union[SlowFast, SlowOnly, FastOnly]:
    """The backbone that ``cfg`` describes. The stems' temporal kernels are not settings: they
    are the constructors' (PySlowFast's 1 for Slow, 5 for Fast)."""
    # What Slow-only shares with SlowFast's Slow pathway.
    shared: dict[str, Any] = dict(
        depth=cfg.depth,
        width_per_group=cfg.width_per_group,
        nonlocal_pool=cfg.nonlocal_pool,
        nonlocal_instantiation=cfg.nonlocal_instantiation,
        **_res5(cfg),
    )
    if cfg.arch == "slowfast":
        return SlowFast(
            alpha=cfg.alpha,
            beta_inv=cfg.beta_inv,
            fusion_conv_channel_ratio=cfg.fusion_conv_channel_ratio,
            lateral=cfg.lateral,
            lateral_kernel=cfg.fusion_kernel_size,
            lateral_norm=cfg.lateral_norm,
            fusion=cfg.fusion,
            slow_frames=cfg.slow_frames,
            slow_temporal_kernels=cfg.slow_temporal_kernels,
            fast_temporal_kernels=cfg.fast_temporal_kernels,
            slow_nonlocal=cfg.nonlocal_blocks,
            **shared,
        )
    if cfg.arch == "slow":
        return SlowOnly(temporal_kernels=cfg.slow_temporal_kernels, nonlocal_blocks=cfg.nonlocal_blocks, **shared)
    if cfg.arch == "fast":
        # The Fast pathway alone (the paper's Table 5a): its kernels, 1 / beta_inv of the
        # channels; non-local blocks are a Slow-pathway setting and are not placed here.
        return FastOnly(beta_inv=cfg.beta_inv, temporal_kernels=cfg.fast_temporal_kernels, **shared)
    raise ConfigError(f"model.arch: expected 'slowfast', 'slow' or 'fast', got {cfg.arch!r}")


def _build_head(cfg: ModelConfig, in_channels: tuple[int, ...]) -> Union[AVAHead, KineticsHead]:
    # What both heads share: the classifier on the pooled, concatenated pathways.
    shared: dict[str, Any] = dict(
        in_channels=in_channels,
        num_classes=cfg.num_classes,
        dropout=cfg.dropout,
        activation=cfg.head_activation,
    )
    if cfg.head == "ava":
        return AVAHead(
            output_size=cfg.roi_output_size,
            spatial_scale=cfg.roi_spatial_scale,
            sampling_ratio=cfg.roi_sampling_ratio,
            aligned=cfg.roi_aligned,
            **shared,
        )
    if cfg.head == "kinetics":
        return KineticsHead(**shared)
    raise ConfigError(f"model.head: expected 'ava' or 'kinetics', got {cfg.head!r}")


def build_model(
    cfg_or_none: Union[Config, ModelConfig, None] = None, **overrides: Any
) -> ActionModel:
    """Build the model a config describes; keyword arguments override ModelConfig fields.

    >>> model = build_model(depth=50, width_per_group=8, num_classes=80)
    """
    if cfg_or_none is None:
        cfg = ModelConfig()
    elif isinstance(cfg_or_none, Config):
        cfg = cfg_or_none.model
    elif isinstance(cfg_or_none, ModelConfig):
        cfg = cfg_or_none
    else:
        raise TypeError(f"expected a Config or ModelConfig, got {type(cfg_or_none).__name__}")
    if overrides:
        names = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(
                f"unknown model setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        cfg = dataclasses.replace(cfg, **overrides)
    try:
        backbone = build_backbone(cfg)
    except ValueError as exc:  # bad argument combinations surface as config errors
        raise ConfigError(f"model: {exc}") from None
    model = ActionModel(backbone, _build_head(cfg, backbone.out_channels))
    if cfg.init == "pyslowfast":
        init_weights(model, fc_init_std=cfg.fc_init_std, zero_init_final_bn=cfg.zero_init_final_bn)
    elif cfg.init != "torch":
        raise ConfigError(f"model.init: expected 'pyslowfast' or 'torch', got {cfg.init!r}")
    return model


# ---------------------------------------------------------------------------------------------
# PySlowFast's config

# PySlowFast's slowfast/config/defaults.py: the value a key takes when a YAML omits it, for
# every key read here (tests/models/test_pyslowfast_defaults.py checks each one).
PYSLOWFAST_DEFAULTS: dict[tuple[str, str], Any] = {
    ("MODEL", "ARCH"): "slowfast",
    ("MODEL", "NUM_CLASSES"): 400,
    ("MODEL", "DROPOUT_RATE"): 0.5,
    ("MODEL", "HEAD_ACT"): "softmax",
    ("RESNET", "DEPTH"): 50,
    ("RESNET", "WIDTH_PER_GROUP"): 64,
    ("RESNET", "NUM_GROUPS"): 1,
    ("RESNET", "STRIDE_1X1"): False,
    ("RESNET", "TRANS_FUNC"): "bottleneck_transform",
    ("RESNET", "NUM_BLOCK_TEMP_KERNEL"): [[3], [4], [6], [3]],
    ("RESNET", "SPATIAL_STRIDES"): [[1], [2], [2], [2]],
    ("RESNET", "SPATIAL_DILATIONS"): [[1], [1], [1], [1]],
    ("NONLOCAL", "LOCATION"): [[[]], [[]], [[]], [[]]],
    ("NONLOCAL", "GROUP"): [[1], [1], [1], [1]],
    ("NONLOCAL", "INSTANTIATION"): "dot_product",
    ("NONLOCAL", "POOL"): [[[1, 2, 2], [1, 2, 2]]] * 4,
    ("SLOWFAST", "ALPHA"): 8,
    ("SLOWFAST", "BETA_INV"): 8,
    ("SLOWFAST", "FUSION_CONV_CHANNEL_RATIO"): 2,
    ("SLOWFAST", "FUSION_KERNEL_SZ"): 5,
    ("DETECTION", "ENABLE"): False,
    ("DETECTION", "ALIGNED"): True,
    ("DETECTION", "SPATIAL_SCALE_FACTOR"): 16,
    ("DETECTION", "ROI_XFORM_RESOLUTION"): 7,
    ("DATA", "NUM_FRAMES"): 8,
    ("DATA", "SAMPLING_RATE"): 8,
    ("DATA", "MEAN"): [0.45, 0.45, 0.45],
    ("DATA", "STD"): [0.225, 0.225, 0.225],
    ("DATA", "TEST_CROP_SIZE"): 256,
    ("AVA", "DETECTION_SCORE_THRESH"): 0.9,
    ("AVA", "BGR"): False,
    ("AVA", "TEST_FORCE_FLIP"): False,
    ("AVA", "IMG_PROC_BACKEND"): "cv2",
}


def _load_pyslowfast_cfg(yaml_text: str) -> Any:
    """``get(section, key)``: the value of a PySlowFast YAML, or defaults.py's when omitted."""
    try:
        raw = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid PySlowFast config: {exc}") from None
    if not isinstance(raw, dict) or "MODEL" not in raw or "RESNET" not in raw:
        raise ConfigError("not a PySlowFast config (no MODEL / RESNET sections)")

    def get(section: str, key: str) -> Any:
        value = (raw.get(section) or {}).get(key)
        return PYSLOWFAST_DEFAULTS[(section, key)] if value is None else value

    return get


def _per_pathway(value: Any, key: str, pathways: int) -> Any:
    # PySlowFast's ResStage asserts one entry per pathway in each stage of these settings; its
    # defaults have one, so a SlowFast YAML that omits them does not build there either.
    if not isinstance(value, list) or len(value) != 4 or any(
            not isinstance(stage, list) or len(stage) != pathways for stage in value):
        raise ConfigError(f"PySlowFast {key}={value!r}: needs 4 stages (res2-res5), each with "
                          f"{pathways} entries (one per pathway)")
    return value


# PySlowFast's _TEMPORAL_KERNEL_BASIS: per arch, rows stem, res2..res5; per pathway a list of
# kernels cycled over the blocks of the stage.
_PYSLOWFAST_TEMPORAL_BASIS = {
    "slow": [[[1]], [[1]], [[1]], [[3]], [[3]]],
    "slowfast": [[[1], [5]], [[1], [3]], [[1], [3]], [[3], [3]], [[3], [3]]],
}
_DEPTH_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _pyslowfast_kernels(basis: list[int], num_blocks: int, num_temporal: int) -> Any:
    # PySlowFast: (basis * num_blocks)[:NUM_BLOCK_TEMP_KERNEL] + [1] * (the rest).
    kernels = (basis * num_blocks)[:num_temporal] + [1] * (num_blocks - num_temporal)
    return kernels[0] if len(set(kernels)) == 1 else kernels


def config_from_pyslowfast_cfg(yaml_text: str) -> ModelConfig:
    """ModelConfig of the architecture a PySlowFast config describes (e.g. the ``cfg`` string
    of a ``.pyth`` checkpoint); a key the YAML omits takes PySlowFast's default
    (:data:`PYSLOWFAST_DEFAULTS`). Raises ConfigError for settings avadet does not implement."""
    get = _load_pyslowfast_cfg(yaml_text)
    arch = str(get("MODEL", "ARCH")).lower()
    if arch not in _PYSLOWFAST_TEMPORAL_BASIS:
        raise ConfigError(f"PySlowFast MODEL.ARCH {arch!r} is not supported (slow, slowfast)")
    depth = int(get("RESNET", "DEPTH"))
    if depth not in _DEPTH_BLOCKS:
        raise ConfigError(f"PySlowFast RESNET.DEPTH {depth} is not supported (50, 101)")
    for key, want in (("NUM_GROUPS", 1), ("STRIDE_1X1", False), ("TRANS_FUNC", "bottleneck_transform")):
        if get("RESNET", key) != want:
            raise ConfigError(f"PySlowFast RESNET.{key}={get('RESNET', key)!r} is not supported")
    pathways = 2 if arch == "slowfast" else 1
    blocks = _DEPTH_BLOCKS[depth]
    num_temporal = _per_pathway(get("RESNET", "NUM_BLOCK_TEMP_KERNEL"),
                                "RESNET.NUM_BLOCK_TEMP_KERNEL", pathways)
    basis = _PYSLOWFAST_TEMPORAL_BASIS[arch]
    kernels = [
        [_pyslowfast_kernels(basis[s + 1][p], blocks[s], num_temporal[s][p]) for s in range(4)]
        for p in range(pathways)
    ]
    strides = _per_pathway(get("RESNET", "SPATIAL_STRIDES"), "RESNET.SPATIAL_STRIDES", pathways)
    dilations = get("RESNET", "SPATIAL_DILATIONS")
    if [s[0] for s in strides[:3]] != [1, 2, 2] or any(d[0] != 1 for d in dilations[:3]):
        raise ConfigError("PySlowFast RESNET.SPATIAL_STRIDES/DILATIONS of res2-res4 must be 1,2,2 / 1")
    res5 = (strides[3][0], dilations[3][0])
    if res5 not in ((2, 1), (1, 2)):
        raise ConfigError(f"PySlowFast res5 stride/dilation {res5} is not supported ((2,1) or (1,2))")
    location = _per_pathway(get("NONLOCAL", "LOCATION"), "NONLOCAL.LOCATION", pathways)
    if pathways == 2 and any(stage[1] for stage in location):
        raise ConfigError("non-local blocks in the Fast pathway are not supported by ModelConfig")
    pools = get("NONLOCAL", "POOL")
    used = [s for s in range(4) if location[s][0]]
    pool = pools[used[0]][0] if used else pools[0][0]
    if any(pools[s][0] != pool for s in used):
        raise ConfigError("non-local blocks with different pools per stage are not supported")
    groups = _per_pathway(get("NONLOCAL", "GROUP"), "NONLOCAL.GROUP", pathways)
    if any(g != 1 for stage in groups for g in stage):
        raise ConfigError("grouped non-local blocks are not supported")
    detection = bool(get("DETECTION", "ENABLE"))
    fields: dict[str, Any] = dict(
        arch=arch,
        depth=depth,
        width_per_group=int(get("RESNET", "WIDTH_PER_GROUP")),
        slow_temporal_kernels=kernels[0],
        res5_dilation=int(res5[1]),
        nonlocal_blocks=[list(location[s][0]) for s in range(4)],
        nonlocal_pool=list(pool),
        nonlocal_instantiation=str(get("NONLOCAL", "INSTANTIATION")),
        head="ava" if detection else "kinetics",
        num_classes=int(get("MODEL", "NUM_CLASSES")),
        dropout=float(get("MODEL", "DROPOUT_RATE")),
        roi_output_size=int(get("DETECTION", "ROI_XFORM_RESOLUTION")),
        roi_sampling_ratio=0,
        roi_aligned=bool(get("DETECTION", "ALIGNED")),
        roi_spatial_scale=1.0 / float(get("DETECTION", "SPATIAL_SCALE_FACTOR")),
        head_activation=str(get("MODEL", "HEAD_ACT")),
    )
    if arch == "slowfast":
        fields.update(
            alpha=int(get("SLOWFAST", "ALPHA")),
            beta_inv=int(get("SLOWFAST", "BETA_INV")),
            fusion_conv_channel_ratio=int(get("SLOWFAST", "FUSION_CONV_CHANNEL_RATIO")),
            fusion_kernel_size=int(get("SLOWFAST", "FUSION_KERNEL_SZ")),
            lateral="conv",
            fusion="concat",
            fast_temporal_kernels=kernels[1],
        )
    return ModelConfig(**fields)


def pyslowfast_data_settings(yaml_text: str) -> dict[str, Any]:
    """The :class:`~avadet.config.DataConfig` values of PySlowFast's AVA test path (the
    ``"test"`` split of ``slowfast/datasets/ava_dataset.py``) for a PySlowFast config; a key
    the YAML omits takes PySlowFast's default (:data:`PYSLOWFAST_DEFAULTS`).

    That path reads ``DATA.NUM_FRAMES`` frames at stride ``DATA.SAMPLING_RATE``, keeps the
    person boxes scored >= ``AVA.DETECTION_SCORE_THRESH``, scales the short side of the whole
    frame to ``DATA.TEST_CROP_SIZE`` (no crop), scales all four box coordinates by the long
    side's ratio (``box_scaling="long_side"``) and normalises RGB with ``DATA.MEAN / STD``.
    Settings avadet does not reproduce (BGR input, forced flip, the "pytorch" image backend)
    raise ConfigError.
    """
    get = _load_pyslowfast_cfg(yaml_text)
    unsupported = {("AVA", "BGR"): False, ("AVA", "TEST_FORCE_FLIP"): False,
                   ("AVA", "IMG_PROC_BACKEND"): "cv2"}
    for (section, key), want in unsupported.items():
        if get(section, key) != want:
            raise ConfigError(f"PySlowFast {section}.{key}={get(section, key)!r} is not "
                              f"supported (only {want!r})")
    return {
        "num_frames": int(get("DATA", "NUM_FRAMES")),
        "sampling_rate": int(get("DATA", "SAMPLING_RATE")),
        "mean": [float(v) for v in get("DATA", "MEAN")],
        "std": [float(v) for v in get("DATA", "STD")],
        "test_short_side": int(get("DATA", "TEST_CROP_SIZE")),
        "test_detection_score": float(get("AVA", "DETECTION_SCORE_THRESH")),
        "box_scaling": "long_side",
    }


def pyslowfast_cfg_text(checkpoint: dict) -> Optional[str]:
    """The ``cfg`` YAML of a PySlowFast checkpoint dict, or None."""
    cfg = checkpoint.get("cfg") if isinstance(checkpoint, dict) else None
    return cfg if isinstance(cfg, str) else None
