"""Key maps of checkpoint formats: a checkpoint's tensor name -> avadet's (None: not a model
tensor of ours), for PySlowFast ``.pyth``, Caffe2 blobs, pytorchvideo, MMAction2
(:mod:`avadet.models.checkpoint_mmaction`) and avadet's own."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

import torch

from avadet.errors import CheckpointError
from avadet.models.checkpoint_mmaction import is_mmaction_style, mmaction_key

# The head: left fresh by backbone_only=True (Kinetics -> AVA initialisation).
HEAD_PREFIX = "head."


def clip_list(items: list[str], limit: int = 12) -> str:
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# Each format's map is a table of rules, (pattern on the whole key, avadet name of the match),
# tried in order; the first pattern that matches names the tensor.
_Rule = tuple["re.Pattern[str]", Callable[["re.Match[str]"], str]]

_PATHWAY = {"0": "slow", "1": "fast"}
_LATERAL_AT_STAGE = {1: "pool1", 2: "res2", 3: "res3", 4: "res4"}
_BN = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}


def _rules(*rules: tuple[str, Callable[[re.Match[str]], str]]) -> tuple[_Rule, ...]:
    return tuple((re.compile(pattern), name) for pattern, name in rules)


def _first_match(rules: tuple[_Rule, ...], key: str) -> Optional[str]:
    for pattern, name in rules:
        m = pattern.fullmatch(key)
        if m:
            return name(m)
    return None


_PYSLOWFAST_BLOCK_PART = {
    "branch1": "shortcut",
    "branch1_bn": "shortcut_bn",
    **{f"branch2.{c}": f"conv_{c}" for c in "abc"},
    **{f"branch2.{c}_bn": f"bn_{c}" for c in "abc"},
}
_PYSLOWFAST_RULES = _rules(
    (
        r"s1\.pathway([01])_stem\.(conv|bn)\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[1]]}_stem.{m[2]}.{m[3]}",
    ),
    (
        r"s([1-4])_fuse\.(conv_f2s|bn)\.(\w+)",
        lambda m: f"backbone.lateral_{_LATERAL_AT_STAGE[int(m[1])]}."
        f"{'conv' if m[2] == 'conv_f2s' else 'bn'}.{m[3]}",
    ),
    (
        r"s(\d)\.pathway([01])_res(\d+)\.(branch1|branch1_bn|branch2\.[abc](?:_bn)?)\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[2]]}_res{m[1]}.blocks.{m[3]}."
        f"{_PYSLOWFAST_BLOCK_PART[m[4]]}.{m[5]}",
    ),
    (
        r"s(\d)\.pathway([01])_nonlocal(\d+)\.(conv_theta|conv_phi|conv_g|conv_out|bn)\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[2]]}_res{m[1]}.nonlocal_blocks.{m[3]}.{m[4]}.{m[5]}",
    ),
    (r"head\.projection\.(weight|bias)", lambda m: f"head.projection.{m[1]}"),
)


def _pyslowfast_key(key: str) -> Optional[str]:
    return _first_match(_PYSLOWFAST_RULES, key)


# Caffe2 blobs: a "t_" prefix marks the Fast pathway (group 1 of every rule that has one);
# "_w" is a conv weight, "_bn_s/_b/_rm/_riv" its BN's weight, bias and statistics.
_C2_PARAM = r"(w|bn_s|bn_b|bn_rm|bn_riv)"


def _c2_path(m: re.Match[str]) -> str:
    return "fast" if m[1] else "slow"


def _c2_param(conv: str, bn: str, suffix: str) -> str:
    return f"{conv}.weight" if suffix == "w" else f"{bn}.{_BN[suffix[3:]]}"


def _c2_block_part(branch: str) -> tuple[str, str]:
    return ("shortcut", "shortcut_bn") if branch == "1" else (f"conv_{branch[1]}", f"bn_{branch[1]}")


_CAFFE2_RULES = _rules(
    (r"(t_)?conv1_w", lambda m: f"backbone.{_c2_path(m)}_stem.conv.weight"),
    (r"(t_)?res_conv1_bn_(s|b|rm|riv)", lambda m: f"backbone.{_c2_path(m)}_stem.bn.{_BN[m[2]]}"),
    # Laterals are stored with the Fast pathway's blobs.
    (
        rf"t_pool1_subsample_{_C2_PARAM}",
        lambda m: f"backbone.lateral_pool1.{_c2_param('conv', 'bn', m[1])}",
    ),
    (
        rf"t_res(\d)_(\d+)_branch2c_bn_subsample_{_C2_PARAM}",
        lambda m: f"backbone.lateral_res{m[1]}.{_c2_param('conv', 'bn', m[3])}",
    ),
    (
        rf"(t_)?res(\d)_(\d+)_branch(1|2a|2b|2c)_{_C2_PARAM}",
        lambda m: f"backbone.{_c2_path(m)}_res{m[2]}.blocks.{m[3]}."
        f"{_c2_param(*_c2_block_part(m[4]), m[5])}",
    ),
    (
        r"(t_)?nonlocal_conv(\d)_(\d+)_(theta|phi|g|out)_(w|b)",
        lambda m: f"backbone.{_c2_path(m)}_res{m[2]}.nonlocal_blocks.{m[3]}.conv_{m[4]}."
        f"{'weight' if m[5] == 'w' else 'bias'}",
    ),
    (
        r"(t_)?nonlocal_conv(\d)_(\d+)_bn_(s|b|rm|riv)",
        lambda m: f"backbone.{_c2_path(m)}_res{m[2]}.nonlocal_blocks.{m[3]}.bn.{_BN[m[4]]}",
    ),
    (r"pred_(w|b)", lambda m: f"head.projection.{'weight' if m[1] == 'w' else 'bias'}"),
)


def _caffe2_key(key: str) -> Optional[str]:
    return _first_match(_CAFFE2_RULES, key)


def caffe2_ignored(key: str) -> bool:
    return key in ("model_iter", "lr") or key.endswith("_momentum")


_PTV_NORM = {"conv": "conv", "norm": "bn"}
_PTV_BLOCK_PART = {
    "branch1_conv": "shortcut",
    "branch1_norm": "shortcut_bn",
    **{f"branch2.conv_{c}": f"conv_{c}" for c in "abc"},
    **{f"branch2.norm_{c}": f"bn_{c}" for c in "abc"},
}
_PYTORCHVIDEO_RULES = _rules(
    (
        r"blocks\.0\.multipathway_blocks\.([01])\.(conv|norm)\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[1]]}_stem.{_PTV_NORM[m[2]]}.{m[3]}",
    ),
    # Single-pathway models (slow_r50).
    (r"blocks\.0\.(conv|norm)\.(\w+)", lambda m: f"backbone.slow_stem.{_PTV_NORM[m[1]]}.{m[2]}"),
    # The fusion after block i (0 = stem) is the lateral before stage res{i + 2}.
    (
        r"blocks\.([0-3])\.multipathway_fusion\.(conv_fast_to_slow|norm)\.(\w+)",
        lambda m: f"backbone.lateral_{_LATERAL_AT_STAGE[int(m[1]) + 1]}."
        f"{'conv' if m[2] == 'conv_fast_to_slow' else 'bn'}.{m[3]}",
    ),
    (
        r"blocks\.(\d)\.(?:multipathway_blocks\.([01])\.)?res_blocks\.(\d+)\."
        r"(branch1_conv|branch1_norm|branch2\.conv_[abc]|branch2\.norm_[abc])\.(\w+)",
        lambda m: f"backbone.{_PATHWAY[m[2] or '0']}_res{int(m[1]) + 1}.blocks.{m[3]}."
        f"{_PTV_BLOCK_PART[m[4]]}.{m[5]}",
    ),
    (r"(?:detection_head|blocks\.\d)\.proj\.(weight|bias)", lambda m: f"head.projection.{m[1]}"),
)


def _pytorchvideo_key(key: str) -> Optional[str]:
    key = key[len("model.") :] if key.startswith("model.") else key
    return _first_match(_PYTORCHVIDEO_RULES, key)


def _avadet_key(key: str) -> Optional[str]:
    return key if key.startswith(("backbone.", "head.")) else None


KEY_MAPS: dict[str, Callable[[str], Optional[str]]] = {
    "avadet": _avadet_key,
    "pyslowfast": _pyslowfast_key,
    "caffe2": _caffe2_key,
    "pytorchvideo": _pytorchvideo_key,
    "mmaction2": mmaction_key,
}


def state_dict_of(obj: Any, path: str) -> dict[str, Any]:
    if isinstance(obj, dict):
        for container in ("model_state", "state_dict", "model"):
            if isinstance(obj.get(container), dict):
                obj = obj[container]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: no state dict of tensors found")
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in obj.items()}


def guess_style(keys: list[str]) -> str:
    if any(k.startswith("s1.pathway0_stem.") for k in keys):
        return "pyslowfast"
    if any("multipathway_blocks" in k or re.match(r"(model\.)?blocks\.0\.", k) for k in keys):
        return "pytorchvideo"
    if is_mmaction_style(keys):  # before avadet's: both start with "backbone."
        return "mmaction2"
    if any(k.startswith("backbone.") for k in keys):
        return "avadet"
    raise CheckpointError(
        f"cannot tell the key style of the checkpoint (first keys: {clip_list(sorted(keys), 5)})"
    )
