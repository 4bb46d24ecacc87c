"""MMAction2's AVA checkpoints: key map, the background column, and the settings their test
pipeline uses.

MMAction2 (open-mmlab/mmaction2) saves ``{"meta": {...}, "state_dict": {...}}``; the AVA models
are ``FastRCNN`` with a ``ResNet3dSlowFast`` or ``ResNet3dSlowOnly`` backbone and an
``AVARoIHead`` (``SingleRoIExtractor3D`` + ``BBoxHeadAVA``). Read off MMAction2's code:

- SlowFast takes every ``speed_ratio``-th frame of the clip for the Slow pathway (nearest
  interpolation with scale ``1 / resample_rate``; the AVA configs have ``resample_rate ==
  speed_ratio``, so the Fast pathway sees the whole clip): avadet's ``slow_frames="stride"``.
- Laterals are a bare ``fusion_kernel x 1 x 1`` convolution (``lateral_norm=False``: no BN,
  no ReLU), stride ``speed_ratio``, ``2 * C_fast`` outputs; fusion kernel 5 by default, 7 in
  the 8x8 configs.
- Stems, bottlenecks and inflation (slow 1, 1, 3, 3; fast 3, 3, 3, 3) are avadet's; no pool2 in
  either backbone; the AVA configs set ``spatial_strides=(1, 2, 2, 1)`` with no dilation, so
  res5 has stride 1 and dilation 1 (avadet's ``res5_stride=1, res5_dilation=1``).
- RoI: the pathways' features are stretched to the longest T (nearest), averaged over T and
  concatenated, RoIAlign 8x8 (``aligned=True``, sampling ratio 0, scale 1/16), then
  ``BBoxHeadAVA``: temporal average, spatial max, dropout, ``fc_cls`` of 81 outputs whose
  column 0 is the background: avadet's head gets the 80 class columns.
- Scores are ``sigmoid(logits)``.

The architecture comes from the tensor shapes; what shapes cannot say (alpha, res5's stride,
the clip) comes from the config text MMAction2 stores in ``meta["cfg"]`` (read as data by a
restricted parser, never executed), else from the zoo's file names (``..._4x16x1_...``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Optional, Union

import torch

from avadet.config import ModelConfig
from avadet.errors import AvadetError, CheckpointError, one_line
from avadet.models.resnet3d import STAGE_DEPTHS

FC_CLS = "roi_head.bbox_head.fc_cls"
# ImageNet statistics of MMAction2's ActionDataPreprocessor (0..255 units).
MMACTION_MEAN = (123.675, 116.28, 103.53)
MMACTION_STD = (58.395, 57.12, 57.375)

_PART = {"conv1": "a", "conv2": "b", "conv3": "c"}
_RULES: tuple[tuple[re.Pattern[str], Any], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (
            r"backbone\.(?:(slow|fast)_path\.)?conv1\.(conv|bn)\.(\w+)",
            lambda m: f"backbone.{m[1] or 'slow'}_stem.{m[2]}.{m[3]}",
        ),
        (
            r"backbone\.slow_path\.conv1_lateral\.(conv|bn)\.(\w+)",
            lambda m: f"backbone.lateral_pool1.{m[1]}.{m[2]}",
        ),
        # layer{i}_lateral follows stage layer{i} = res{i + 1}.
        (
            r"backbone\.slow_path\.layer([1-3])_lateral\.(conv|bn)\.(\w+)",
            lambda m: f"backbone.lateral_res{int(m[1]) + 1}.{m[2]}.{m[3]}",
        ),
        (
            r"backbone\.(?:(slow|fast)_path\.)?layer([1-4])\.(\d+)\.(conv[123])\.(conv|bn)\.(\w+)",
            lambda m: f"backbone.{m[1] or 'slow'}_res{int(m[2]) + 1}.blocks.{m[3]}."
            f"{m[5]}_{_PART[m[4]]}.{m[6]}",
        ),
        (
            r"backbone\.(?:(slow|fast)_path\.)?layer([1-4])\.(\d+)\.downsample\.(conv|bn)\.(\w+)",
            lambda m: f"backbone.{m[1] or 'slow'}_res{int(m[2]) + 1}.blocks.{m[3]}."
            f"{'shortcut' if m[4] == 'conv' else 'shortcut_bn'}.{m[5]}",
        ),
        (r"roi_head\.bbox_head\.fc_cls\.(weight|bias)", lambda m: f"head.projection.{m[1]}"),
    )
)


def mmaction_key(key: str) -> Optional[str]:
    """avadet's name of an MMAction2 tensor (None: no counterpart)."""
    for pattern, name in _RULES:
        m = pattern.fullmatch(key)
        if m:
            return name(m)
    return None


def is_mmaction_style(keys: list[str]) -> bool:
    """MMAction2's detector keys: ``backbone.slow_path.*``, ``backbone.layer1.*`` with
    ``backbone.conv1.conv.*`` (Slow-only), or the AVA head ``roi_head.bbox_head.*``."""
    return any(
        k.startswith(("backbone.slow_path.", "roi_head.bbox_head.", "backbone.conv1.conv."))
        for k in keys
    )


def ignored_key(key: str) -> bool:
    """Buffers of MMAction2's data preprocessor (mean/std), not model weights."""
    return key.startswith("data_preprocessor.")


def drop_background(
    tensors: dict[str, torch.Tensor], model_classes: int, path: str
) -> list[str]:
    """Remove column 0 (the background) of ``fc_cls`` in place when the checkpoint has one
    more output than the model; returns what was dropped (for the load report)."""
    weight = tensors.get(f"{FC_CLS}.weight")
    if weight is None or weight.ndim != 2 or weight.shape[0] != model_classes + 1:
        return []
    tensors[f"{FC_CLS}.weight"] = weight[1:]
    dropped = [f"{FC_CLS}.weight[0] (background)"]
    bias = tensors.get(f"{FC_CLS}.bias")
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise CheckpointError(f"{path}: {FC_CLS}.bias {tuple(bias.shape)} does not fit "
                                  f"{FC_CLS}.weight {tuple(weight.shape)}")
        tensors[f"{FC_CLS}.bias"] = bias[1:]
        dropped.append(f"{FC_CLS}.bias[0] (background)")
    return dropped


# ---------------------------------------------------------------------------------------------
# The config text in meta: Python syntax, read as data.


class _Unknown:
    """A value the restricted reader does not evaluate (a call other than ``dict``, an
    import, ...): harmless until a setting that is needed has it."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"<not evaluated: {self.text}>"


def _eval(node: ast.AST, names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id, _Unknown(node.id))
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval(e, names) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        return {
            _eval(k, names): _eval(v, names)
            for k, v in zip(node.keys, node.values)
            if k is not None
        }
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {kw.arg: _eval(kw.value, names) for kw in node.keywords if kw.arg is not None}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _eval(node.operand, names)
        return -value if isinstance(value, (int, float)) else _Unknown("-")
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        left, right = _eval(node.left, names), _eval(node.right, names)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        strings = isinstance(left, str) and isinstance(right, str)
        if numbers and not (isinstance(node.op, ast.Div) and right == 0):
            ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
                   ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
            return ops[type(node.op)](left, right)
        if strings and isinstance(node.op, ast.Add):
            return left + right
        return _Unknown("operation")
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            v = _eval(value.value if isinstance(value, ast.FormattedValue) else value, names)
            parts.append(str(v) if isinstance(v, (str, int, float)) else "?")
        return "".join(parts)
    return _Unknown(type(node).__name__)


def parse_config_text(text: str, path: str = "<config>") -> dict[str, Any]:
    """Top-level ``name = value`` assignments of an MMAction2 / mmengine config text
    (``dict(...)``, literals, names assigned earlier, f-strings); nothing is executed."""
    if len(text) > 1_000_000:
        raise CheckpointError(f"{path}: meta config text of {len(text)} characters is too long")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        raise CheckpointError(f"{path}: meta config is not Python syntax: {exc}") from None
    names: dict[str, Any] = {"True": True, "False": False, "None": None}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                names[target.id] = _eval(stmt.value, names)
    return names


def _get(tree: Any, *keys: Any, default: Any = None) -> Any:
    for key in keys:
        if isinstance(tree, dict) and key in tree:
            tree = tree[key]
        elif isinstance(tree, (list, tuple)) and isinstance(key, int) and -len(tree) <= key < len(tree):
            tree = tree[key]
        else:
            return default
    return tree


def _config_text(meta: Any) -> Optional[str]:
    if not isinstance(meta, dict):
        return None
    for key in ("cfg", "config"):  # mmengine runners / MMAction2 0.x
        if isinstance(meta.get(key), str):
            return meta[key]
    return None


def _test_pipeline(cfg: dict[str, Any]) -> list[Any]:
    for pipeline in (
        _get(cfg, "test_dataloader", "dataset", "pipeline"),
        _get(cfg, "val_dataloader", "dataset", "pipeline"),
        cfg.get("test_pipeline"),
        cfg.get("val_pipeline"),
        _get(cfg, "data", "test", "pipeline"),  # MMAction2 0.x
        _get(cfg, "data", "val", "pipeline"),
    ):
        if isinstance(pipeline, (list, tuple)):
            return list(pipeline)
    return []


def _test_dataset(cfg: dict[str, Any]) -> dict[str, Any]:
    for dataset in (
        _get(cfg, "test_dataloader", "dataset"),
        _get(cfg, "val_dataloader", "dataset"),
        _get(cfg, "data", "test"),
        _get(cfg, "data", "val"),
    ):
        if isinstance(dataset, dict):
            return dataset
    return {}


def _transform(pipeline: list[Any], name: str) -> Optional[dict[str, Any]]:
    for step in pipeline:
        if isinstance(step, dict) and str(step.get("type", "")).split(".")[-1] == name:
            return step
    return None


# ---------------------------------------------------------------------------------------------
# Settings


def _stage_blocks(tensors: dict[str, Any], prefix: str) -> list[list[int]]:
    """Temporal kernel of conv1 of every block of layer1..layer4 under ``prefix``."""
    stages: list[list[int]] = []
    for i in range(1, 5):
        kernels = []
        while f"{prefix}layer{i}.{len(kernels)}.conv1.conv.weight" in tensors:
            kernels.append(int(tensors[f"{prefix}layer{i}.{len(kernels)}.conv1.conv.weight"].shape[2]))
        stages.append(kernels)
    return stages


def _kernels(stages: list[list[int]]) -> list[Any]:
    return [k[0] if len(set(k)) == 1 else k for k in stages]


def _depth(stages: list[list[int]], path: str) -> int:
    counts = tuple(len(k) for k in stages)
    for depth, blocks in STAGE_DEPTHS.items():
        if blocks == counts:
            return depth
    raise CheckpointError(f"{path}: MMAction2 backbone with blocks per stage {counts}: not a "
                          f"ResNet-50 or -101 ({', '.join(map(str, STAGE_DEPTHS.values()))})")


def _weight(tensors: dict[str, Any], key: str, path: str) -> torch.Tensor:
    value = tensors.get(key)
    if not isinstance(value, torch.Tensor) or value.ndim < 2:
        raise CheckpointError(f"{path}: MMAction2 checkpoint without {key}")
    return value


def _clip_from_name(path: str, slowfast: bool) -> Optional[tuple[int, int, int]]:
    """``(clip_len, frame_interval, alpha)`` from a zoo file name's ``TxTAUx1`` (the Slow
    pathway's T frames at stride tau; SlowFast's Fast frames are 2 apart in every AVA
    config)."""
    m = re.search(r"(?<![0-9])(\d+)x(\d+)x1(?![0-9])", Path(path).name)
    if not m:
        return None
    frames, tau = int(m[1]), int(m[2])
    if not slowfast:
        return frames, tau, 1
    if tau % 2:
        return None
    return frames * tau // 2, 2, tau // 2


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unsupported(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: MMAction2 {what} is not supported by avadet's model")


def mmaction_settings(
    obj: Any, path: Union[str, Path]
) -> tuple[ModelConfig, dict[str, Any], list[int]]:
    """What an MMAction2 AVA checkpoint needs: ``(ModelConfig, data settings, class ids)``.

    ``obj``: the loaded checkpoint (``read_checkpoint(path)[1]``). The model config comes from
    the tensor shapes (depth from the blocks per stage, width, beta, lateral kernel and norm,
    temporal kernels, classes) and from ``meta``'s config text or the file name (alpha, res5,
    RoI size). The data settings are :class:`~avadet.config.DataConfig` fields of MMAction2's
    test pipeline: ``num_frames``, ``sampling_rate``, ``clip_center_offset`` (1),
    ``resize_rounding`` ("round"), ``test_short_side``, ``mean``, ``std`` (ImageNet's, in
    ``[0, 1]`` units), ``test_detection_score`` (the dataset's ``person_det_score_thr``),
    ``test_keep_best_detection`` (True: MMAction2 keeps each keyframe's best proposal),
    ``box_clipping`` ("none": its proposals are scaled to the input without clipping),
    ``fps`` / ``segment_start`` / ``segment_end`` when the config sets them, and ``classes``
    when it has ``custom_classes``. Class ids: the AVA action id of each
    output column of the model (1..80, or the custom classes).

    Raises :class:`CheckpointError` naming the file for what avadet cannot reproduce
    (non-local blocks, temporal max pooling, context RoI features, ...).
    """
    path = str(path)
    try:
        model_cfg, data, class_ids = _settings(obj, path)
    except AvadetError:
        raise
    except (IndexError, TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        # A crafted state dict or config (a 1-d conv weight, a string where a number belongs).
        raise CheckpointError(f"{path}: not a readable MMAction2 checkpoint: {one_line(exc)}") from None
    from avadet.models.checkpoint import check_model_size

    check_model_size(model_cfg, path)
    return model_cfg, data, class_ids


def _settings(obj: Any, path: str) -> tuple[ModelConfig, dict[str, Any], list[int]]:
    from avadet.models.checkpoint_keys import state_dict_of

    tensors = state_dict_of(obj, path)
    if not is_mmaction_style(list(tensors)):
        raise CheckpointError(f"{path}: not an MMAction2 detector checkpoint (no backbone.slow_path.*, "
                              "backbone.conv1.conv.* or roi_head.bbox_head.* keys)")
    text = _config_text(obj.get("meta") if isinstance(obj, dict) else None)
    cfg = parse_config_text(text, path) if text else {}
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    backbone = model.get("backbone") if isinstance(model.get("backbone"), dict) else {}
    roi_head = model.get("roi_head") if isinstance(model.get("roi_head"), dict) else {}

    nonlocal_keys = [k for k in tensors if ".non_local_block." in k]
    if nonlocal_keys:
        raise _unsupported(path, f"non-local block ({nonlocal_keys[0]})")
    slowfast = any(k.startswith("backbone.slow_path.") for k in tensors)
    slow_prefix = "backbone.slow_path." if slowfast else "backbone."
    slow_pathway = backbone.get("slow_pathway", {}) if slowfast else backbone
    slow_pathway = slow_pathway if isinstance(slow_pathway, dict) else {}

    stem = _weight(tensors, f"{slow_prefix}conv1.conv.weight", path)
    if tuple(stem.shape[2:]) != (1, 7, 7):
        raise _unsupported(path, f"slow stem kernel {tuple(stem.shape[2:])} (avadet: 1x7x7)")
    width = int(stem.shape[0])
    slow_stages = _stage_blocks(tensors, slow_prefix)
    depth = _depth(slow_stages, path)
    strides = _get(slow_pathway, "spatial_strides", default=(1, 2, 2, 1))
    dilations = _get(slow_pathway, "dilations", default=(1, 1, 1, 1))
    if list(strides)[:3] != [1, 2, 2] or list(dilations)[:3] != [1, 1, 1]:
        raise _unsupported(path, f"spatial_strides {strides} / dilations {dilations}")

    fc = _weight(tensors, f"{FC_CLS}.weight", path)
    head_cfg = roi_head.get("bbox_head", {}) if isinstance(roi_head.get("bbox_head"), dict) else {}
    extractor = (roi_head.get("bbox_roi_extractor", {})
                 if isinstance(roi_head.get("bbox_roi_extractor"), dict) else {})
    for where, key, want in (
        (extractor, "roi_layer_type", "RoIAlign"),
        (extractor, "pool_mode", "avg"),
        (extractor, "temporal_pool_mode", "avg"),
        (extractor, "with_temporal_pool", True),
        (extractor, "with_global", False),
        (head_cfg, "temporal_pool_type", "avg"),
        (head_cfg, "spatial_pool_type", "max"),
        (head_cfg, "mlp_head", False),
        (head_cfg, "multilabel", True),
    ):
        if where.get(key, want) != want:
            raise _unsupported(path, f"RoI head setting {key}={where[key]!r}")
    if roi_head.get("shared_head") is not None:
        raise _unsupported(path, "RoI shared head (ACRN / LFB)")
    background = bool(head_cfg.get("background_class", True))
    num_classes = int(fc.shape[0]) - (1 if background else 0)
    if num_classes < 1:
        raise CheckpointError(f"{path}: {FC_CLS}.weight has {fc.shape[0]} rows")

    fields: dict[str, Any] = dict(
        arch="slowfast" if slowfast else "slow",
        depth=depth,
        width_per_group=width,
        slow_temporal_kernels=_kernels(slow_stages),
        res5_stride=int(strides[3]),
        res5_dilation=int(dilations[3]),
        head="ava",
        num_classes=num_classes,
        dropout=float(head_cfg.get("dropout_ratio", 0.5)),
        roi_output_size=int(extractor.get("output_size", 8)),
        roi_sampling_ratio=int(extractor.get("sampling_ratio", 0)),
        roi_aligned=bool(extractor.get("aligned", True)),
        roi_spatial_scale=1.0 / float(extractor.get("featmap_stride", 16)),
        head_activation="sigmoid",
    )
    clip: Optional[tuple[int, int, int]] = None
    pipeline = _test_pipeline(cfg)
    sample = _transform(pipeline, "SampleAVAFrames")
    if slowfast:
        fast_stem = _weight(tensors, "backbone.fast_path.conv1.conv.weight", path)
        if tuple(fast_stem.shape[2:]) != (5, 7, 7):
            raise _unsupported(path, f"fast stem kernel {tuple(fast_stem.shape[2:])} (avadet: 5x7x7)")
        fast_width = int(fast_stem.shape[0])
        if fast_width < 1 or width % fast_width:
            raise CheckpointError(f"{path}: slow width {width} is no multiple of fast width {fast_width}")
        lateral = _weight(tensors, "backbone.slow_path.conv1_lateral.conv.weight", path)
        if lateral.ndim != 5 or int(lateral.shape[1]) != fast_width or int(lateral.shape[0]) % fast_width:
            raise CheckpointError(f"{path}: conv1_lateral {tuple(lateral.shape)} does not fit a "
                                  f"fast stem of {fast_width} channels")
        alpha = None
        if backbone:
            speed, resample = backbone.get("speed_ratio", 8), backbone.get("resample_rate", 8)
            if not (_is_int(speed) and _is_int(resample) and speed >= 1):
                raise CheckpointError(f"{path}: MMAction2 speed_ratio {speed!r} / resample_rate "
                                      f"{resample!r} are not positive integers")
            if resample != speed:
                raise _unsupported(path, f"resample_rate {resample} != speed_ratio {speed} "
                                         "(a subsampled Fast pathway)")
            alpha = speed
        fields.update(
            alpha=alpha or 8,
            beta_inv=width // fast_width,
            fusion_conv_channel_ratio=int(lateral.shape[0]) // fast_width,
            fusion_kernel_size=int(lateral.shape[2]),
            lateral="conv",
            lateral_norm=any(k.startswith("backbone.slow_path.conv1_lateral.bn.") for k in tensors),
            fusion="concat",
            slow_frames="stride",
            fast_temporal_kernels=_kernels(_stage_blocks(tensors, "backbone.fast_path.")),
        )
        if alpha is None:
            clip = _clip_from_name(path, slowfast=True)
            if clip is None:
                raise CheckpointError(
                    f"{path}: records no MMAction2 config (meta 'cfg') and its name has no "
                    "TxTAUx1 pattern (e.g. 4x16x1): cannot tell alpha and the clip length"
                )
            fields["alpha"] = clip[2]
    if sample is not None:
        clip_len, interval = sample.get("clip_len"), sample.get("frame_interval", 2)
        if not (_is_int(clip_len) and _is_int(interval) and clip_len >= 1 and interval >= 1):
            raise CheckpointError(f"{path}: SampleAVAFrames clip_len {clip_len!r} / frame_interval "
                                  f"{interval!r} are not integers")
        clip = (clip_len, interval, fields.get("alpha", 1))
    elif clip is None:
        clip = _clip_from_name(path, slowfast=slowfast)
    if clip is None:
        raise CheckpointError(f"{path}: records no MMAction2 test pipeline (meta 'cfg') and its "
                              "name has no TxTAUx1 pattern (e.g. 4x16x1): cannot tell the clip")

    preprocessor = model.get("data_preprocessor", {}) if isinstance(model.get("data_preprocessor"), dict) else {}
    mean = preprocessor.get("mean", MMACTION_MEAN)
    std = preprocessor.get("std", MMACTION_STD)
    resize = _transform(pipeline, "Resize")
    short_side = 256
    if resize is not None:
        scale = resize.get("scale")
        if (not isinstance(scale, (list, tuple)) or len(scale) != 2 or scale[0] != -1
                or not resize.get("keep_ratio", True)):
            raise _unsupported(path, f"test Resize {scale!r} (avadet: scale=(-1, S), keep_ratio)")
        short_side = int(scale[1])
    dataset = _test_dataset(cfg)
    data: dict[str, Any] = dict(
        num_frames=int(clip[0]),
        sampling_rate=int(clip[1]),
        # MMAction2 centres on index fps * (t - start) + start_index and adds start_index again
        # to name the file; avadet's file is its index + 1.
        clip_center_offset=2 * int(dataset.get("start_index", 1)) - 1,
        resize_rounding="round",
        test_short_side=short_side,
        mean=[float(v) / 255.0 for v in mean],
        std=[float(v) / 255.0 for v in std],
        test_detection_score=float(dataset.get("person_det_score_thr", 0.9)),
        test_keep_best_detection=True,
        box_clipping="none",
    )
    for mm_key, our_key in (("fps", "fps"), ("timestamp_start", "segment_start"),
                            ("timestamp_end", "segment_end")):
        if isinstance(dataset.get(mm_key), (int, float)):
            data[our_key] = float(dataset[mm_key])
    custom = dataset.get("custom_classes", cfg.get("custom_classes"))
    if isinstance(custom, (list, tuple)) and custom:
        class_ids = [int(c) for c in custom]
        data["classes"] = class_ids
    else:
        class_ids = list(range(1, num_classes + 1))
    if len(class_ids) != num_classes:
        raise CheckpointError(f"{path}: {len(class_ids)} custom classes but {FC_CLS} scores "
                              f"{num_classes} (+ background)")
    return ModelConfig(**fields), data, class_ids
