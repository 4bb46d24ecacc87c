"""avadet's own training checkpoints: what they hold, how they are written and read back.

A checkpoint is a ``torch.save``'d dict that loads with ``torch.load(weights_only=True)``::

    {
        "avadet_checkpoint": 1,          # format version
        "model_state": {...},            # "backbone.*", "head.*" (never "module."-prefixed)
        "model_config": {...},           # dataclasses.asdict(cfg.model)
        "config": {...},                 # the whole training Config as a dict
        "class_ids": [int, ...],         # column j of the scores is label id class_ids[j]
        "epoch": int, "iteration": int,  # progress: epochs finished, optimiser steps taken
        # training state, absent from inference-only files:
        "optimizer_state", "scheduler_state", "scaler_state", "rng_state", "extra",
        "tensors_sha256": str,           # sha256 of every tensor above (see tensors_sha256)
    }

Reading one back verifies it: the sha256 of its tensors must be the one recorded when it was
saved (a file with flipped bytes is refused; files written before the checksum existed load
with a warning), its weights must be finite, and the model its config describes must have at
most :data:`~avadet.models.checkpoint.MAX_MODEL_PARAMETERS` parameters before it is built.

``model_config`` makes the file self-describing for :func:`avadet.models.build_model_from_checkpoint`;
``config`` carries what inference needs besides the weights (sampling, input size,
normalisation, fps).

Files live in ``<output_dir>/checkpoints/``: ``checkpoint_iter_0000123.pt`` every N
iterations and at each epoch end, and ``model_final.pt`` when training completes. Each is
written to a temporary file in the same folder and renamed into place, so a run killed while
saving leaves the previous checkpoint intact; the temporary files such a kill leaves are
removed when a run starts (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import torch
from torch import nn

from avadet.config import Config, DataConfig, ModelConfig, config_from_dict, config_to_dict
from avadet.errors import AvadetError, CheckpointError, one_line
from avadet.io.atomic import publish_mode
from avadet.models.checkpoint import check_model_size

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
FINAL_NAME = "model_final.pt"
_ITER_RE = re.compile(r"checkpoint_iter_(\d+)\.pt")
CHECKSUM_KEY = "tensors_sha256"
# What must hold which type in every checkpoint (the training fields: avadet.engine.state).
_FIELD_TYPES: dict[str, type] = {"model_state": dict, "config": dict, "class_ids": list}


def checkpoint_dir(output_dir: PathLike) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR


def iteration_checkpoint_path(output_dir: PathLike, iteration: int) -> Path:
    return checkpoint_dir(output_dir) / f"checkpoint_iter_{iteration:07d}.pt"


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / DataParallel wrapper (or the model)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def _tensors_in(obj: Any, where: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor of a checkpoint dict with its path, in the dict's (saved) order."""
    if isinstance(obj, torch.Tensor):
        yield where, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if not (where == "" and key == CHECKSUM_KEY):
                yield from _tensors_in(value, f"{where}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors_in(value, f"{where}/{i}")


def tensors_sha256(checkpoint: dict[str, Any]) -> str:
    """sha256 over every tensor of ``checkpoint`` (weights, optimiser, scaler, RNG states):
    per tensor its path of keys, dtype, shape and bytes, in the dict's order. Numbers and
    strings are not covered: their types and ranges are checked when they are read."""
    digest = hashlib.sha256()
    for where, tensor in _tensors_in(checkpoint, ""):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{where}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        # Bytes through a uint8 view: numpy has no bfloat16.
        digest.update(flat.view(torch.uint8).numpy() if flat.numel() else b"")
    return digest.hexdigest()


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    cfg: Config,
    class_ids: list[int],
    *,
    epoch: int,
    iteration: int,
    training_state: Optional[dict[str, Any]] = None,
) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then rename).

    ``training_state`` adds keys such as ``optimizer_state`` and ``rng_state``; everything in
    it must be tensors, numbers, strings, lists, tuples or dicts (``weights_only`` loading).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "avadet_checkpoint": FORMAT_VERSION,
        "model_state": unwrap(model).state_dict(),
        "model_config": dataclasses.asdict(cfg.model),
        "config": config_to_dict(cfg),
        "class_ids": [int(c) for c in class_ids],
        "epoch": int(epoch),
        "iteration": int(iteration),
    }
    state.update(training_state or {})
    state[CHECKSUM_KEY] = tensors_sha256(state)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            publish_mode(tmp, path, fd=f.fileno())  # not mkstemp's private 0600
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_training_checkpoint(path: PathLike) -> dict[str, Any]:
    """The dict of an avadet checkpoint (never executes code: ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, disallowed pickle globals
        raise CheckpointError(f"{path}: cannot be read as an avadet checkpoint: {one_line(exc)}") from None
    if not isinstance(obj, dict) or "avadet_checkpoint" not in obj:
        raise CheckpointError(
            f"{path}: not an avadet training checkpoint (no 'avadet_checkpoint' key): a run "
            "resumes only from its own checkpoints; start one from published weights with "
            "train.init_checkpoint"
        )
    if type(obj["avadet_checkpoint"]) is not int:
        raise CheckpointError(f"{path}: field 'avadet_checkpoint' must be an integer (the format version)")
    if obj["avadet_checkpoint"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {obj['avadet_checkpoint']} is newer than this avadet "
            f"reads ({FORMAT_VERSION}); upgrade avadet"
        )
    missing = [k for k in ("model_state", "config", "class_ids") if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks the keys {missing}")
    _check_fields(obj, path)
    _check_checksum(obj, path)
    _check_finite(obj["model_state"], path)
    return obj


def _check_fields(obj: dict[str, Any], path: Path) -> None:
    """The types every reader of a checkpoint relies on, so a foreign or damaged file is one
    line naming the field instead of a traceback from the code that uses it."""
    for key, kind in _FIELD_TYPES.items():
        if not isinstance(obj[key], kind):
            raise CheckpointError(
                f"{path}: field '{key}' is a {type(obj[key]).__name__}, not a {kind.__name__}"
            )
    bad = [k for k, v in obj["model_state"].items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if bad:
        raise CheckpointError(f"{path}: field 'model_state' holds non-tensor entries ({str(bad[0])[:60]})")
    if not all(type(c) is int for c in obj["class_ids"]):
        raise CheckpointError(f"{path}: field 'class_ids' must be a list of integers")
    for key in ("avadet_checkpoint", "epoch", "iteration"):
        if key in obj and (type(obj[key]) is not int or obj[key] < 0):
            raise CheckpointError(f"{path}: field '{key}' must be an integer >= 0, got {str(obj[key])[:40]}")


def _check_checksum(obj: dict[str, Any], path: Path) -> None:
    recorded = obj.get(CHECKSUM_KEY)
    if recorded is None:
        logger.warning("%s: written before checkpoints carried a checksum; loading it unverified", path)
        return
    if not isinstance(recorded, str):
        raise CheckpointError(f"{path}: field '{CHECKSUM_KEY}' is a {type(recorded).__name__}, not a str")
    try:
        actual = tensors_sha256(obj)
    except (RecursionError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{path}: its tensors cannot be checksummed: {one_line(exc)}") from None
    if actual != recorded:
        raise CheckpointError(
            f"{path}: damaged: the sha256 of its tensors differs from the one recorded when it "
            "was saved; use an earlier checkpoint or retrain"
        )


def _check_finite(model_state: dict[str, torch.Tensor], path: Path) -> None:
    bad = [k for k, v in model_state.items()
           if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"{path}: non-finite weights (NaN or inf) in {', '.join(bad[:3])}"
            f"{' ...' if len(bad) > 3 else ''}; refusing to load them"
        )


def state_dict_mismatch(own: dict[str, torch.Tensor], state: dict[str, Any]) -> Optional[str]:
    """What keeps ``state`` from loading into a model whose state dict is ``own``, on one line
    (missing, unexpected and shape-mismatched keys), or None."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    parts = [
        f"{label}: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
        if keys
    ]
    return "; ".join(parts) or None


def latest_checkpoint(output_dir: PathLike) -> Optional[Path]:
    """The checkpoint a resumed run continues from: the one with the most iterations among
    ``checkpoint_iter_*.pt`` and ``model_final.pt`` in ``output_dir/checkpoints`` (None if
    there is none). Leftover temporary files of an interrupted save are ignored."""
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return None
    candidates = sorted(
        (int(m.group(1)), p) for p in folder.iterdir() if (m := _ITER_RE.fullmatch(p.name))
    )
    final = folder / FINAL_NAME
    if final.is_file():
        return final
    return candidates[-1][1] if candidates else None


def remove_stale_temporaries(output_dir: PathLike) -> list[Path]:
    """Delete the ``.*.tmp`` files of ``output_dir/checkpoints``: what a kill during a save
    left (a save renames its temporary file into place or deletes it, so none belongs to a
    finished file). Call it only when no other run writes to the folder. Returns the paths."""
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir()
             if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_final_checkpoint(source: PathLike, output_dir: PathLike) -> Path:
    """``output_dir/checkpoints/model_final.pt``: a copy of ``source`` written atomically
    (temporary file, fsync, rename), so a kill leaves either no final file or a whole one."""
    final = checkpoint_dir(output_dir) / FINAL_NAME
    fd, tmp = tempfile.mkstemp(prefix=f".{FINAL_NAME}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as dst, open(source, "rb") as src:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def prune_checkpoints(output_dir: PathLike, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest ``checkpoint_iter_*.pt`` (``model_final.pt`` is never
    touched; ``keep <= 0`` keeps everything). Returns the deleted paths."""
    folder = checkpoint_dir(output_dir)
    if keep <= 0 or not folder.is_dir():
        return []
    found = sorted(
        (int(m.group(1)), p) for p in folder.iterdir() if (m := _ITER_RE.fullmatch(p.name))
    )
    doomed = [p for _, p in found[:-keep]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def load_trained_model(
    checkpoint: PathLike, *, device: Union[str, torch.device] = "cpu"
) -> tuple[nn.Module, Config, list[int]]:
    """Build the model an avadet checkpoint describes and load its weights.

    Returns ``(model, cfg, class_ids)``: the model in eval mode on ``device``, the training
    config (sampling, input size and normalisation for inference) and the label ids of the
    score columns.
    """
    from avadet.models import build_model

    obj = read_training_checkpoint(checkpoint)
    try:
        cfg = config_from_dict(obj["config"])
    except (AvadetError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise CheckpointError(f"{checkpoint}: its config does not load: {one_line(exc)}") from None
    check_model_size(cfg.model, str(checkpoint))  # before anything is allocated
    model = build_model(cfg)
    state = obj["model_state"]
    problem = state_dict_mismatch(model.state_dict(), state)
    if problem:
        raise CheckpointError(f"{checkpoint}: weights do not fit its model config; {problem}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # a dtype torch cannot copy: one line of torch's message
        raise CheckpointError(f"{checkpoint}: weights do not load: {one_line(exc)}") from None
    class_ids = [int(c) for c in obj["class_ids"]]
    if len(class_ids) != cfg.model.num_classes:
        raise CheckpointError(
            f"{checkpoint}: {len(class_ids)} class ids but model.num_classes={cfg.model.num_classes}"
        )
    return model.to(device).eval(), cfg, class_ids


_DEFAULTS = {"model": ModelConfig(), "data": DataConfig()}

# What a trained model owns besides its architecture: how its clips were sampled and
# normalised. Running it otherwise feeds it inputs it never saw.
CHECKPOINT_DATA_KEYS = ("num_frames", "sampling_rate", "mean", "std")


def inference_config(trained: Config, user: Config, *,
                     authored: tuple[str, ...] = CHECKPOINT_DATA_KEYS,
                     explicit: tuple[str, ...] = ()) -> tuple[Config, list[str]]:
    """The config a trained model runs with, for ``avadet test`` and ``avadet detect`` alike.

    From the checkpoint (``trained``): the whole ``model`` section and the ``authored`` fields
    of ``data``: its sampling and normalisation (:data:`CHECKPOINT_DATA_KEYS`), and for a
    checkpoint loaded by :func:`avadet.engine.loading.load_model` its authors' whole
    preprocessing (:data:`~avadet.engine.loading.AUTHORED_DATA_KEYS`: box scaling, test
    short side, person-box threshold). From ``user``: everything else (where the data is and
    what it is, the ``test``/``train`` sections), and any authored ``data`` field named in
    ``explicit`` (``"data.test_short_side"``: the user's own ``key=value`` override, which
    wins over the checkpoint). A caller without a config of its own passes ``trained`` with
    its overrides applied.

    Returns ``(config, ignored)``: ``ignored`` names the settings ``user`` changed from
    avadet's defaults that differ from the checkpoint's and were not used (``"model.alpha"``,
    ``"data.num_frames"``...).
    """
    def overruled(section: str, key: str) -> bool:
        # A value the user set (not avadet's default) that differs from the checkpoint's.
        mine = getattr(getattr(user, section), key)
        return (mine != getattr(getattr(trained, section), key)
                and mine != getattr(_DEFAULTS[section], key))

    ignored = [f"model.{f.name}" for f in dataclasses.fields(trained.model)
               if overruled("model", f.name)]
    taken = [key for key in authored if f"data.{key}" not in explicit]
    ignored += [f"data.{key}" for key in taken if overruled("data", key)]
    data = dataclasses.replace(user.data, **{key: getattr(trained.data, key) for key in taken})
    return dataclasses.replace(user, model=trained.model, data=data), ignored


def override_keys(overrides: Sequence[str]) -> tuple[str, ...]:
    """The dotted keys of ``key=value`` overrides (``"data.test_short_side=320"`` ->
    ``"data.test_short_side"``)."""
    return tuple(o.split("=", 1)[0].strip() for o in overrides if "=" in o)
