"""The model zoo: the AVA checkpoints their authors published, by name, and where they live.

:data:`ZOO` is a plain table (a tuple of frozen :class:`ZooEntry`), one row per published file:
where to download it, its checksum where the authors published one, which avadet architecture
it fits, the preprocessing its authors tested it with, and the val frame-mAP they report. Every
number comes from the authors' own files, cited above each group; nothing is measured here.

:func:`resolve_checkpoint` turns what a user typed after ``--checkpoint`` into a file::

    resolved = resolve_checkpoint("pyslowfast_slowfast_32x2_r101_50_50")
    resolved.path   # <torch hub dir>/checkpoints/SLOWFAST_32x2_R101_50_50.pkl, downloaded once
    resolved.entry  # its ZooEntry (None when a file path was given)

The cache is torch hub's (``torch.hub.get_dir()/checkpoints``: ``$TORCH_HOME/hub/checkpoints``,
``~/.cache/torch/hub/checkpoints`` by default), so a file torch hub already fetched (the
pytorchvideo ones) is found without downloading again.

Sources of the facts (read at the commits in ``/work/.mirror``):

- PySlowFast ``MODEL_ZOO.md`` (section AVA) and ``configs/AVA/c2/*.yaml``;
- pytorchvideo ``pytorchvideo/models/hub/{slowfast,resnet}.py`` (URLs), ``docs/source/
  model_zoo.md`` (section "AVA (V2.2)": mAPs) and ``website/docs/
  tutorial_torchhub_detection_inference.md`` (``ava_inference_transform``);
- MMAction2 ``configs/detection/{slowfast,slowonly}/metafile.yml`` and ``README.md`` (URLs,
  mAPs) and the config files they name (sampling, test pipeline, normalisation).

Checksums: PySlowFast and pytorchvideo publish none. MMAction2's file names end in the first 8
hex digits of the file's sha256 (``..._20220906-5180ea3c.pth``): that prefix is recorded and
checked.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Union
from urllib.parse import urlparse

from avadet.config import ModelConfig
from avadet.errors import CheckpointError, ConfigError, WeightsUnavailable

BOX_SCALINGS = ("long_side", "per_axis")


@dataclass(frozen=True)
class Preprocessing:
    """How the authors fed the model at test time.

    ``num_frames`` / ``sampling_rate``: the frames around the keyframe (avadet's
    ``data.num_frames`` / ``data.sampling_rate``: the Fast pathway's for SlowFast, the only
    pathway's for Slow-only). ``mean`` / ``std`` on the ``[0, 1]`` scale, RGB.
    ``box_scaling``: how normalised person boxes become input pixels after the short side is
    resized to ``test_short_side``: ``"long_side"`` multiplies both coordinates by one factor,
    the long side's (PySlowFast's ``scale_boxes``: the floored new long side over the old one);
    ``"per_axis"`` scales x and y by each axis's own factor (MMAction2's ``Resize``).
    ``detection_threshold``: person boxes scoring below it are dropped (``keep_best_detection``:
    except a keyframe's best one). ``resize_rounding``, ``clip_center_offset``,
    ``box_clipping``: as avadet's ``data`` fields of those names.
    """

    test_short_side: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_frames: int
    sampling_rate: int
    box_scaling: str
    detection_threshold: float
    # MMAction2's test pipeline: the long side rounded (not floored), the clip centred one
    # frame later, a keyframe's best person box kept even below the threshold.
    resize_rounding: str = "floor"
    clip_center_offset: int = 0
    keep_best_detection: bool = False
    box_clipping: str = "last_pixel"  # MMAction2: "none"


@dataclass(frozen=True)
class ZooEntry:
    """One published AVA checkpoint.

    ``source`` is the file's format, as :func:`~avadet.models.load_checkpoint` names it
    (``"caffe2"``, ``"pyslowfast"``, ``"pytorchvideo"``, ``"mmaction2"``). ``sha256``: the
    published checksum, or the 8-digit prefix MMAction2 puts in its file names, or None (not
    published). ``architecture``: a builder name of :data:`~avadet.models.PUBLISHED_MODELS`,
    or the ModelConfig fields of an architecture that has no builder (read-only mapping).
    ``val_map``: the authors' frame-mAP (%) on AVA ``ava_version`` val. ``test_config`` and
    ``test_overrides``: the avadet config of that architecture and the ``key=value``
    overrides that point it at the AVA version's files, for ``avadet test`` (the
    preprocessing comes from the entry, :meth:`data_settings`). ``reference``: the authors'
    files the row was read from.
    """

    name: str
    source: str
    url: str
    sha256: Optional[str]
    architecture: Union[str, Mapping[str, Any]] = dataclasses.field(hash=False)
    preprocessing: Preprocessing
    val_map: float
    ava_version: str
    pretrain: str
    authors_config: str
    test_config: str
    test_overrides: tuple[str, ...] = ()
    notes: str = ""
    reference: str = ""

    @property
    def file_name(self) -> str:
        """The file's name in the cache: the last part of its URL."""
        return os.path.basename(urlparse(self.url).path)

    @property
    def arch_label(self) -> str:
        """A short name of the architecture: the builder's, or ``<arch>_r<depth>[_nl]``."""
        if isinstance(self.architecture, str):
            return self.architecture
        arch = dict(self.architecture)
        nonlocal_blocks = any(arch.get("nonlocal_blocks", []))
        label = f"{arch.get('arch', 'slowfast')}_r{arch.get('depth', 50)}"
        return label + ("_nl" if nonlocal_blocks else "")

    def data_settings(self) -> dict[str, Any]:
        """The preprocessing as avadet's ``data`` fields (what a checkpoint decides: frames,
        stride, normalisation, box scaling, test short side, person-box threshold)."""
        pre = self.preprocessing
        return {"num_frames": pre.num_frames, "sampling_rate": pre.sampling_rate,
                "mean": list(pre.mean), "std": list(pre.std), "box_scaling": pre.box_scaling,
                "test_short_side": pre.test_short_side,
                "test_detection_score": pre.detection_threshold,
                "resize_rounding": pre.resize_rounding,
                "clip_center_offset": pre.clip_center_offset,
                "test_keep_best_detection": pre.keep_best_detection,
                "box_clipping": pre.box_clipping}

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain JSON-ready values."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["architecture"] = (self.architecture if isinstance(self.architecture, str)
                               else copy.deepcopy(dict(self.architecture)))
        out["preprocessing"] = dataclasses.asdict(self.preprocessing)
        out["test_overrides"] = list(self.test_overrides)
        out["file_name"] = self.file_name
        return out


def _arch(**fields: Any) -> Mapping[str, Any]:
    """A read-only architecture mapping with lists of its own (no list shared by two rows)."""
    return MappingProxyType(copy.deepcopy(fields))


# PySlowFast normalisation and Caffe2-era test input (slowfast/config/defaults.py DATA.MEAN,
# DATA.STD; configs/AVA/c2/*.yaml DATA.TEST_CROP_SIZE 256).
_PYSLOWFAST_MEAN = (0.45, 0.45, 0.45)
_PYSLOWFAST_STD = (0.225, 0.225, 0.225)
# MMAction2 configs' data_preprocessor: mean [123.675, 116.28, 103.53], std [58.395, 57.12,
# 57.375] on the 0-255 scale, i.e. these on avadet's 0-1 scale (exact quotients by 255).
_MMACTION2_MEAN = (0.485, 0.456, 0.406)
_MMACTION2_STD = (0.229, 0.224, 0.225)
# avadet's data files for AVA v2.1 (configs/ava/*.yaml name the v2.2 files).
_V21_FILES = (
    "data.val_annotations=annotations/ava_val_v2.1.csv",
    "data.val_exclusions=annotations/ava_val_excluded_timestamps_v2.1.csv",
    "data.labelmap=annotations/ava_action_list_v2.1_for_activitynet_2018.pbtxt",
)

_PYSLOWFAST_ZOO = "https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/ava/"
_PYTORCHVIDEO_ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/ava/"
_MMACTION2_ZOO = "https://download.openmmlab.com/mmaction/v1.0/detection/"


def _pyslowfast(name: str, file: str, arch: str, *, num_frames: int, sampling_rate: int,
                threshold: float, val_map: float, version: str, pretrain: str, config: str,
                test_config: str, test_overrides: tuple[str, ...] = (),
                notes: str = "") -> ZooEntry:
    return ZooEntry(
        name=name, source="caffe2", url=_PYSLOWFAST_ZOO + file, sha256=None, architecture=arch,
        preprocessing=Preprocessing(256, _PYSLOWFAST_MEAN, _PYSLOWFAST_STD, num_frames,
                                    sampling_rate, "long_side", threshold),
        val_map=val_map, ava_version=version, pretrain=pretrain, authors_config=config,
        test_config=test_config, test_overrides=test_overrides, notes=notes,
        reference="PySlowFast MODEL_ZOO.md (AVA) and " + config,
    )


# PySlowFast MODEL_ZOO.md, section AVA (architecture, pretrain, mAP, AVA version, link) and the
# config of each (configs/AVA/c2/*.yaml: DATA.NUM_FRAMES, DATA.SAMPLING_RATE, TEST_CROP_SIZE,
# AVA.DETECTION_SCORE_THRESH). All four files are Caffe2 pickles (.pkl). The zoo's
# "frame length x sample rate" column names the Slow pathway (8 x 8 = 32 Fast frames at
# stride 2 with alpha 4); the configs name the Fast one, as avadet does.
_PYSLOWFAST_ENTRIES = (
    _pyslowfast(
        "pyslowfast_slow_8x8_r50", "C2D_8x8_R50.pkl", "slow_8x8_r50",
        num_frames=4, sampling_rate=16, threshold=0.9, val_map=19.5, version="2.2",
        pretrain="Kinetics-400", config="configs/AVA/c2/SLOW_8x8_R50.yaml",
        test_config="configs/ava/slow_8x8_r50.yaml",
        notes="MODEL_ZOO.md lists it as Slow R50 4 x 16 (the file is named C2D_8x8_R50.pkl); "
              "its config tests on the person_box_67091280_iou75 box list at score 0.9",
    ),
    _pyslowfast(
        "pyslowfast_slowfast_32x2_r101_50_50", "SLOWFAST_32x2_R101_50_50.pkl",
        "slowfast_32x2_r101_50_50", num_frames=32, sampling_rate=2, threshold=0.8,
        val_map=29.1, version="2.2", pretrain="Kinetics-600",
        config="configs/AVA/c2/SLOWFAST_32x2_R101_50_50.yaml",
        test_config="configs/ava/slowfast_32x2_r101_50_50.yaml",
    ),
    _pyslowfast(
        "pyslowfast_slowfast_32x2_r101_50_50_v21", "SLOWFAST_32x2_R101_50_50_v2.1.pkl",
        "slowfast_32x2_r101_50_50", num_frames=32, sampling_rate=2, threshold=0.8,
        val_map=28.2, version="2.1", pretrain="Kinetics-600",
        config="configs/AVA/c2/SLOWFAST_32x2_R101_50_50_v2.1.yaml",
        test_config="configs/ava/slowfast_32x2_r101_50_50.yaml", test_overrides=_V21_FILES,
        notes="evaluated on AVA v2.1 (ava_val_v2.1.csv, the 2018 60-class label map)",
    ),
    _pyslowfast(
        "pyslowfast_slowfast_64x2_r101_50_50", "SLOWFAST_64x2_R101_50_50.pkl",
        "slowfast_32x2_r101_50_50", num_frames=64, sampling_rate=2, threshold=0.8,
        val_map=29.4, version="2.2", pretrain="Kinetics-600",
        config="configs/AVA/c2/SLOWFAST_64x2_R101_50_50.yaml",
        test_config="configs/ava/slowfast_32x2_r101_50_50.yaml",
        notes="the 32x2 R101 architecture fed 64 frames (16 Slow); the head pools over all "
              "of them",
    ),
)

# pytorchvideo: URLs from pytorchvideo/models/hub/slowfast.py and resnet.py
# (checkpoint_paths), mAPs from docs/source/model_zoo.md "AVA (V2.2)" (Slow R50 4x16 19.5,
# SlowFast R50 8x8 24.67, both Kinetics-400 pretrained); test short side 256, mean 0.45 and
# std 0.225 from ava_inference_transform in website/docs/tutorial_torchhub_detection_
# inference.md, whose comments give 4 frames (Slow) and 32 frames with alpha 4 (SlowFast).
_PYTORCHVIDEO_ENTRIES = (
    ZooEntry(
        name="pytorchvideo_slowfast_r50_detection", source="pytorchvideo",
        url=_PYTORCHVIDEO_ZOO + "SLOWFAST_8x8_R50_DETECTION.pyth", sha256=None,
        architecture="slowfast_r50_detection",
        preprocessing=Preprocessing(256, _PYSLOWFAST_MEAN, _PYSLOWFAST_STD, 32, 2, "long_side",
                                    0.8),
        val_map=24.67, ava_version="2.2", pretrain="Kinetics-400",
        authors_config="pytorchvideo.models.hub.slowfast_r50_detection",
        test_config="configs/ava/slowfast_32x2_r50_short.yaml",
        notes="pytorchvideo's model zoo says its numbers come from the PySlowFast workflow; "
              "the stride 2 (8x8: 8 Slow frames at stride 8) and the person-box threshold "
              "0.8 (AVA.DETECTION_SCORE_THRESH of PySlowFast's SlowFast AVA configs) are that "
              "workflow's, not published with the model",
        reference="pytorchvideo models/hub/slowfast.py, docs/source/model_zoo.md",
    ),
    ZooEntry(
        name="pytorchvideo_slow_r50_detection", source="pytorchvideo",
        url=_PYTORCHVIDEO_ZOO + "SLOW_4x16_R50_DETECTION.pyth", sha256=None,
        architecture="slow_8x8_r50",
        preprocessing=Preprocessing(256, _PYSLOWFAST_MEAN, _PYSLOWFAST_STD, 4, 16, "long_side",
                                    0.9),
        val_map=19.5, ava_version="2.2", pretrain="Kinetics-400",
        authors_config="pytorchvideo.models.hub.slow_r50_detection",
        test_config="configs/ava/slow_8x8_r50.yaml",
        notes="the same Slow 4x16 R50 and mAP (19.5) as PySlowFast's C2D_8x8_R50.pkl; stride "
              "16 and threshold 0.9 are that config's (configs/AVA/c2/SLOW_8x8_R50.yaml)",
        reference="pytorchvideo models/hub/resnet.py, docs/source/model_zoo.md",
    ),
)


def _mmaction2(name: str, config: str, stamp: str, arch: Mapping[str, Any], *, num_frames: int,
               sampling_rate: int, val_map: float, version: str, pretrain: str,
               test_config: str, test_overrides: tuple[str, ...], notes: str = "") -> ZooEntry:
    folder = config.split("_", 1)[0]  # "slowfast" or "slowonly"
    url = f"{_MMACTION2_ZOO}{folder}/{config}/{config}_{stamp}.pth"
    return ZooEntry(
        name=name, source="mmaction2", url=url, sha256=stamp.rsplit("-", 1)[1], architecture=arch,
        preprocessing=Preprocessing(256, _MMACTION2_MEAN, _MMACTION2_STD, num_frames,
                                    sampling_rate, "per_axis", 0.9, resize_rounding="round",
                                    clip_center_offset=1, keep_best_detection=True,
                                    box_clipping="none"),
        val_map=val_map, ava_version=version, pretrain=pretrain,
        authors_config=f"configs/detection/{folder}/{config}.py", test_config=test_config,
        test_overrides=test_overrides, notes=notes,
        reference=f"MMAction2 configs/detection/{folder}/metafile.yml, README.md and "
                  f"{config}.py",
    )


# MMAction2's AVA architectures, as ModelConfig fields where avadet has them, plus what
# avadet's MMAction2 support adds: res5 at stride 1 without dilation (spatial_strides
# (1, 2, 2, 1), dilations (1, 1, 1, 1)), laterals without BN/ReLU (lateral_norm False, the
# ResNet3dPathway default), RoIAlign 8x8 (output_size=8; mmcv's aligned RoIAlign), and
# mmcv's non-local block (embedded_gaussian, sub_sample, use_scale). Read off the configs'
# backbone and roi_head sections. MMAction2's head has 81 outputs (class 0: background).
_MMACTION2_COMMON = dict(depth=50, res5_stride=1, res5_dilation=1, roi_output_size=8,
                         roi_aligned=True, slow_temporal_kernels=[1, 1, 3, 3])


def _mm_slowfast(alpha: int, fusion_kernel: int) -> Mapping[str, Any]:
    # resample_rate = speed_ratio = alpha, channel_ratio 8; fast conv1 (5, 7, 7).
    # Slow frames: every alpha-th frame of the clip (slow_frames "stride"), not linspace.
    return _arch(arch="slowfast", alpha=alpha, beta_inv=8, fusion_kernel_size=fusion_kernel,
                 fast_temporal_kernels=[3, 3, 3, 3], lateral_norm=False, slow_frames="stride",
                 **_MMACTION2_COMMON)


def _mm_slowonly(depth: int = 50, nonlocal_blocks: bool = False) -> Mapping[str, Any]:
    fields: dict[str, Any] = {"arch": "slow", **_MMACTION2_COMMON, "depth": depth}
    if nonlocal_blocks:
        # non_local=((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0)): a block after
        # res3 blocks 0, 2 and res4 blocks 0, 2, 4 (0-based).
        fields.update(nonlocal_blocks=[[], [0, 2], [0, 2, 4], []],
                      nonlocal_mode="embedded_gaussian", nonlocal_sub_sample=True,
                      nonlocal_use_scale=True)
    return _arch(**fields)


_R50_SHORT = "configs/ava/slowfast_32x2_r50_short.yaml"
_SLOW = "configs/ava/slow_8x8_r50.yaml"
_AVA_KINETICS = ("trained on AVA-Kinetics' train set, evaluated on AVA v2.2 val "
                 "(MMAction2 configs/detection/slowonly/README.md)")

# MMAction2 configs/detection/slowfast/metafile.yml and configs/detection/slowonly/
# metafile.yml (Weights, mAP, Pretrained, Training Data), README.md "AVA2.2 (Trained on
# AVA-Kinetics)" for the four *_ava-kinetics-rgb rows, which the metafile leaves out; the
# configs' val_pipeline (SampleAVAFrames clip_len / frame_interval, Resize scale=(-1, 256));
# AVADataset's person_det_score_thr default 0.9 (mmaction/datasets/ava_dataset.py). Left out:
# the context, temporal-max, focal-loss and nonlinear-head variants (heads avadet lacks).
_MMACTION2_ENTRIES = (
    _mmaction2("mmaction2_slowfast_r50_4x16_ava21",
               "slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb",
               "20220906-5180ea3c",
               _mm_slowfast(alpha=8, fusion_kernel=5), num_frames=32, sampling_rate=2,
               val_map=24.32, version="2.1", pretrain="Kinetics-400", test_config=_R50_SHORT,
               test_overrides=_V21_FILES),
    _mmaction2("mmaction2_slowfast_r50_8x8_ava21",
               "slowfast_kinetics400-pretrained-r50_8xb8-8x8x1-20e_ava21-rgb",
               "20220906-39133ec7",
               _mm_slowfast(alpha=4, fusion_kernel=7), num_frames=32, sampling_rate=2,
               val_map=25.80, version="2.1", pretrain="Kinetics-400", test_config=_R50_SHORT,
               test_overrides=_V21_FILES),
    _mmaction2("mmaction2_slowfast_r50_8x8_ava22",
               "slowfast_kinetics400-pretrained-r50_8xb6-8x8x1-cosine-10e_ava22-rgb",
               "20220906-d934a48f", _mm_slowfast(alpha=4, fusion_kernel=7), num_frames=32,
               sampling_rate=2, val_map=25.90, version="2.2", pretrain="Kinetics-400",
               test_config=_R50_SHORT, test_overrides=()),
    _mmaction2("mmaction2_slowonly_r50_4x16_k400_ava21",
               "slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb",
               "20220906-953ef5fe",
               _mm_slowonly(), num_frames=4, sampling_rate=16, val_map=20.72, version="2.1",
               pretrain="Kinetics-400", test_config=_SLOW,
               test_overrides=_V21_FILES),
    _mmaction2("mmaction2_slowonly_r50_4x16_k700_ava21",
               "slowonly_kinetics700-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb",
               "20220906-b3b6d44e",
               _mm_slowonly(), num_frames=4, sampling_rate=16, val_map=22.77, version="2.1",
               pretrain="Kinetics-700", test_config=_SLOW,
               test_overrides=_V21_FILES),
    # Not listed: MMAction2's SlowOnly R50 with non-local blocks (4x16 21.55, 8x8 23.77 mAP):
    # its non-local block (embedded Gaussian, sub-sampled, scaled) is not avadet's, and the
    # loader refuses it.
    _mmaction2("mmaction2_slowonly_r101_8x8_ava21",
               "slowonly_kinetics400-pretrained-r101_8xb16-8x8x1-20e_ava21-rgb",
               "20220906-43f16877", _mm_slowonly(depth=101), num_frames=8, sampling_rate=8,
               val_map=24.83, version="2.1", pretrain="Kinetics-400", test_config=_SLOW,
               test_overrides=_V21_FILES),
    _mmaction2("mmaction2_slowonly_r50_4x16_k400_avakinetics",
               "slowonly_k400-pre-r50_8xb8-4x16x1-10e_ava-kinetics-rgb",
               "20221205-33e3ca7c",
               _mm_slowonly(), num_frames=4, sampling_rate=16, val_map=24.53, version="2.2",
               pretrain="Kinetics-400", test_config=_SLOW, test_overrides=(),
               notes=_AVA_KINETICS),
    _mmaction2("mmaction2_slowonly_r50_4x16_k700_avakinetics",
               "slowonly_k700-pre-r50_8xb8-4x16x1-10e_ava-kinetics-rgb",
               "20221205-a07e8c15",
               _mm_slowonly(), num_frames=4, sampling_rate=16, val_map=25.87, version="2.2",
               pretrain="Kinetics-700", test_config=_SLOW, test_overrides=(),
               notes=_AVA_KINETICS),
    _mmaction2("mmaction2_slowonly_r50_8x8_k400_avakinetics",
               "slowonly_k400-pre-r50_8xb8-8x8x1-10e_ava-kinetics-rgb",
               "20221205-8f8dff3b",
               _mm_slowonly(), num_frames=8, sampling_rate=8, val_map=26.10, version="2.2",
               pretrain="Kinetics-400", test_config=_SLOW,
               test_overrides=(),
               notes=_AVA_KINETICS),
    _mmaction2("mmaction2_slowonly_r50_8x8_k700_avakinetics",
               "slowonly_k700-pre-r50_8xb8-8x8x1-10e_ava-kinetics-rgb",
               "20221205-16a01c37",
               _mm_slowonly(), num_frames=8, sampling_rate=8, val_map=27.82, version="2.2",
               pretrain="Kinetics-700", test_config=_SLOW,
               test_overrides=(),
               notes=_AVA_KINETICS),
)

ZOO: tuple[ZooEntry, ...] = _PYSLOWFAST_ENTRIES + _PYTORCHVIDEO_ENTRIES + _MMACTION2_ENTRIES


def zoo_names() -> list[str]:
    return [entry.name for entry in ZOO]


def find_entry(name: str) -> Optional[ZooEntry]:
    """The entry called ``name`` (case-insensitive), or None."""
    key = name.strip().lower()
    return next((entry for entry in ZOO if entry.name == key), None)


def close_names(name: str, limit: int = 3) -> list[str]:
    """Zoo names that contain ``name``, then the ones most like it (difflib)."""
    key = name.strip().lower()
    names = zoo_names()
    contained = [n for n in names if key and key in n]
    alike = difflib.get_close_matches(key, names, n=limit, cutoff=0.4)
    return list(dict.fromkeys(contained + alike))[:limit]


def unknown_name_message(name: str, *, could_be_a_file: bool = True) -> str:
    """One line: ``name`` is not a zoo name (nor a file), and the names closest to it."""
    close = close_names(name)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    what = "no such file and no model" if could_be_a_file else "no model"
    return f"{name}: {what} of that name in the zoo; {hint}'avadet models' lists them"


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``; a :class:`CheckpointError` naming the close ones if none."""
    entry = find_entry(name)
    if entry is None:
        raise CheckpointError(unknown_name_message(name, could_be_a_file=False))
    return entry


def model_config(entry: ZooEntry, **overrides: Any) -> ModelConfig:
    """The :class:`ModelConfig` of ``entry``'s architecture. An architecture with fields
    avadet does not have yet (MMAction2's) is a :class:`ConfigError` naming them."""
    from avadet.models.published import published_config

    if isinstance(entry.architecture, str):
        return published_config(entry.architecture, **overrides)
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    fields = {**copy.deepcopy(dict(entry.architecture)), **overrides}
    missing = sorted(set(fields) - known)
    if missing:
        raise ConfigError(f"{entry.name}: avadet cannot build this architecture yet "
                          f"(no ModelConfig fields {', '.join(missing)})")
    return ModelConfig(**fields)


# -- the cache and downloads ----------------------------------------------------------------

def cache_dir() -> Path:
    """torch hub's checkpoint folder, ``torch.hub.get_dir()/checkpoints`` (it honours
    ``TORCH_HOME``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(entry: ZooEntry) -> Path:
    """Where ``entry``'s file is (or will be) in the cache."""
    return cache_dir() / entry.file_name


def is_cached(entry: ZooEntry) -> bool:
    return cached_path(entry).is_file()


def sha256_file(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _hash_matches(actual: str, expected: str) -> bool:
    """``expected`` is the full sha256 or a prefix of it (MMAction2's 8 digits)."""
    return actual.startswith(expected.lower())


# (path, size, mtime) of the files verified in this process: a 400 MB file is hashed once.
_VERIFIED: set[tuple[str, int, int]] = set()


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def verify_file(path: Union[str, Path], expected: Optional[str]) -> None:
    """Check ``path``'s sha256 against ``expected`` (full or prefix; None: nothing to check).
    A mismatch is a one-line :class:`CheckpointError` with both hashes."""
    if expected is None:
        return
    path = Path(path)
    key = _file_key(path)
    if key in _VERIFIED:
        return
    actual = sha256_file(path)
    if not _hash_matches(actual, expected):
        raise CheckpointError(
            f"{path}: sha256 {actual} does not match the published {expected}; the file is "
            "damaged or not this model: delete it and run again to download it afresh")
    _VERIFIED.add(key)



Opener = Callable[..., Any]


def _unavailable(url: str, dest: Path, reason: object) -> WeightsUnavailable:
    reason = " ".join(str(reason).split())
    return WeightsUnavailable(f"cannot download {url} ({reason}); fetch it on a machine with "
                              f"internet and put it at {dest}")


def download_checkpoint(url: str, dest: Union[str, Path], *, sha256: Optional[str] = None,
                        progress: bool = True, timeout: float = 60.0,
                        opener: Optional[Opener] = None) -> Path:
    """Download ``url`` to ``dest``: into a temporary file in ``dest``'s folder (a tqdm bar
    on stderr), checked against ``sha256`` (full or prefix), then renamed onto ``dest`` in one
    step, so ``dest`` is complete or absent. ``opener`` is ``urllib.request.urlopen`` unless
    given.

    Failures of the network (no route, DNS, HTTP errors, timeouts, a connection cut short) are
    :class:`WeightsUnavailable`, one line naming the URL and ``dest``; a failure to write
    (a full disk) is the ``OSError`` itself; a checksum mismatch is a
    :class:`CheckpointError`. Nothing is left behind but a complete, checked ``dest``.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    opener = opener or urllib.request.urlopen
    handle, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "avadet"})
            try:  # only reading from the network is in here: a failed write is not "offline"
                with opener(request, timeout=timeout) as response:
                    length = response.headers.get("Content-Length") if response.headers else None
                    total = int(length) if length and str(length).isdigit() else None
                    got = 0
                    with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                              disable=not progress, leave=False) as bar:
                        while block := response.read(1 << 16):
                            _write(out, block)
                            got += len(block)
                            bar.update(len(block))
            except (OSError, HTTPException) as exc:  # URLError, HTTPError, timeouts, resets
                if isinstance(exc, _WriteError):
                    raise exc.__cause__ from None  # type: ignore[misc]
                raise _unavailable(url, dest, getattr(exc, "reason", None) or exc) from None
            if total is not None and got != total:
                raise _unavailable(url, dest, f"the connection ended after {got} of {total} bytes")
        if sha256 is not None:
            actual = sha256_file(tmp)
            if not _hash_matches(actual, sha256):
                raise CheckpointError(f"{url}: the downloaded file's sha256 {actual} does not "
                                      f"match the published {sha256}; nothing was kept")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if sha256 is not None:
        _VERIFIED.add(_file_key(dest))  # checked above: resolve_checkpoint need not hash again
    return dest


class _WriteError(OSError):
    """Marks a failed write inside the download loop, so it is not taken for the network."""


def _write(out: Any, block: bytes) -> None:
    try:
        out.write(block)
    except OSError as exc:
        raise _WriteError(str(exc)) from exc


_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".pyth", ".pkl", ".ckpt")


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A checkpoint file ready to read, and its zoo entry (None for a path the user gave)."""

    path: Path
    entry: Optional[ZooEntry]


def resolve_checkpoint(name_or_path: Union[str, Path], *, download: bool = True,
                       progress: bool = True) -> ResolvedCheckpoint:
    """The file ``name_or_path`` stands for.

    - An existing file: returned as it is (``entry`` None).
    - A zoo name (:data:`ZOO`): its file in the torch hub cache (:func:`cached_path`),
      checked against the published sha256 once per process; downloaded first if absent
      and ``download`` (see :func:`download_checkpoint`).

    Errors, each one line:

    - a missing path (with a folder in it, or a checkpoint suffix): :class:`CheckpointError`
      "no such file"; any other unknown name: :class:`CheckpointError` naming the closest
      zoo names;
    - a zoo file that is absent and cannot be downloaded (no network, or ``download=False``):
      :class:`WeightsUnavailable` saying which URL to fetch and where to put it;
    - a cached or downloaded file with the wrong sha256: :class:`CheckpointError` with both
      hashes (delete the cached file and run again).
    """
    path = Path(name_or_path)
    if path.is_file():
        return ResolvedCheckpoint(path, None)
    entry = find_entry(str(name_or_path))
    if entry is None:
        if path.exists():  # a folder
            raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
        if len(path.parts) > 1 or path.suffix in _CHECKPOINT_SUFFIXES:  # meant as a path
            raise CheckpointError(f"{path}: no such file")
        raise CheckpointError(unknown_name_message(str(name_or_path)))
    dest = cached_path(entry)
    if not dest.is_file():
        if not download:
            raise WeightsUnavailable(
                f"{entry.name} is not downloaded; fetch {entry.url} and put it at {dest}")
        download_checkpoint(entry.url, dest, sha256=entry.sha256, progress=progress)
    verify_file(dest, entry.sha256)
    return ResolvedCheckpoint(dest, entry)


def reproduce_command(entry: ZooEntry, data_root: str = "data/ava") -> str:
    """The ``avadet test`` command line that should reproduce ``entry``'s published mAP on
    AVA prepared under ``data_root``."""
    parts = ["avadet test", f"--config {entry.test_config}", f"--checkpoint {entry.name}",
             f"data.root={data_root}", *entry.test_overrides]
    return " ".join(parts)

