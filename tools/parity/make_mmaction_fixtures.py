"""Make the MMAction2 reference fixtures (tests/fixtures/models/mmaction_*) with MMAction2's code.

Not part of avadet or its tests: run it in a scratch environment that has MMAction2's
dependencies (torch, torchvision, mmengine, mmcv-lite 2.1 (mmcv without compiled ops), numpy,
opencv), pointing at an MMAction2 checkout::

    git -C <mirror> archive HEAD | tar -x -C /tmp/mmaction2
    python tools/parity/make_mmaction_fixtures.py --mmaction2 /tmp/mmaction2

What runs is MMAction2's own ``ResNet3dSlowFast`` / ``ResNet3dSlowOnly``,
``SingleRoIExtractor3D`` and ``BBoxHeadAVA`` (``predict_by_feat`` for the sigmoid), built from
the AVA configs with the base width 64 -> 8. Two stand-ins, because mmcv-lite has no compiled
ops and mmdet is not installed:

- ``mmcv.ops.RoIAlign`` (avg pool mode) is torchvision's ``roi_align`` with the same
  ``output_size``, ``spatial_scale``, ``sampling_ratio`` and ``aligned`` (mmcv's CPU kernel
  and torchvision's are both ports of Detectron2's ROIAlign);
- ``mmdet.models.task_modules.samplers.SamplingResult`` and ``mmaction.utils.InstanceList``,
  type annotations of bbox_head.py.

``AVARoIHead`` (an mmdet ``StandardRoIHead``) is not imported; its test path
``_bbox_forward`` is three lines, reproduced below: extractor, bbox head, ``predict_by_feat``.
MMAction2's packages are entered without running their ``__init__`` files (which import
every model and its dependencies); the modules used are MMAction2's files as they are.
"""

from __future__ import annotations

import argparse
import copy
import sys
import types
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.mmaction_reference import (  # noqa: E402
    make_input,
    make_weights,
    weights_sha256,
)

CONFIGS = {
    "mmaction_slowfast_r50_4x16x1_w8": (
        "configs/detection/slowfast/slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py"
    ),
    "mmaction_slowonly_r50_4x16x1_w8": (
        "configs/detection/slowonly/slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py"
    ),
}
WIDTH = 8
INPUT_SHAPE = {"mmaction_slowfast_r50_4x16x1_w8": (1, 3, 32, 64, 96),
               "mmaction_slowonly_r50_4x16x1_w8": (1, 3, 4, 64, 96)}
# [batch index, x1, y1, x2, y2] in pixels of the 64x96 input.
ROIS = torch.tensor(
    [[0.0, 4.5, 3.25, 50.1, 60.7], [0.0, 30.3, 10.8, 90.6, 63.0], [0.0, 0.0, 0.0, 96.0, 64.0]]
)
WEIGHT_SEED, INPUT_SEED = 20261206, 7


class _RoIAlign(torch.nn.Module):
    """mmcv.ops.RoIAlign(output_size, spatial_scale, sampling_ratio, pool_mode='avg',
    aligned=True) on torchvision."""

    def __init__(self, output_size, spatial_scale=1.0, sampling_ratio=0, pool_mode="avg",
                 aligned=True, use_torchvision=False):
        super().__init__()
        assert pool_mode == "avg"
        self.output_size, self.spatial_scale = output_size, float(spatial_scale)
        self.sampling_ratio, self.aligned = int(sampling_ratio), bool(aligned)

    def forward(self, x, rois):
        return torchvision.ops.roi_align(x, rois, self.output_size, self.spatial_scale,
                                         self.sampling_ratio, self.aligned)


def _install_stand_ins(mmaction2: Path) -> None:
    try:
        from mmcv.ops import RoIAlign  # noqa: F401  (a full mmcv: use it)
    except ImportError:
        ops = types.ModuleType("mmcv.ops")
        ops.RoIAlign = _RoIAlign
        ops.RoIPool = None
        sys.modules["mmcv.ops"] = ops
    for name in ("mmdet", "mmdet.models", "mmdet.models.task_modules"):
        sys.modules.setdefault(name, types.ModuleType(name))
    samplers = types.ModuleType("mmdet.models.task_modules.samplers")
    samplers.SamplingResult = object
    sys.modules["mmdet.models.task_modules.samplers"] = samplers
    # MMAction2's packages without their __init__ files.
    for package in ("mmaction", "mmaction.models", "mmaction.models.backbones",
                    "mmaction.models.roi_heads", "mmaction.models.roi_heads.bbox_heads",
                    "mmaction.models.roi_heads.roi_extractors", "mmaction.structures",
                    "mmaction.structures.bbox", "mmaction.utils", "mmaction.datasets",
                    "mmaction.datasets.transforms", "mmaction.models.data_preprocessors"):
        module = types.ModuleType(package)
        module.__path__ = [str(mmaction2.joinpath(*package.split(".")))]
        sys.modules[package] = module
    import mmaction.structures.bbox.bbox_target as bbox_target
    from mmengine.structures import InstanceData

    sys.modules["mmaction.structures.bbox"].bbox_target = bbox_target.bbox_target
    # mmaction.utils.typing_utils.InstanceList, a type annotation (its module imports the
    # data structures of every task).
    sys.modules["mmaction.utils"].InstanceList = list[InstanceData]


def _narrow(cfg) -> dict:
    """The AVA config's model with base width WIDTH (the Fast pathway WIDTH / channel_ratio)."""
    model = copy.deepcopy(cfg.model)
    backbone = model["backbone"]
    if "slow_pathway" in backbone:
        ratio = backbone.get("channel_ratio", 8)
        backbone["slow_pathway"]["base_channels"] = WIDTH
        backbone["fast_pathway"]["base_channels"] = WIDTH // ratio
        in_channels = 32 * WIDTH + 32 * WIDTH // ratio
    else:
        backbone["base_channels"] = WIDTH
        in_channels = 32 * WIDTH
    model["roi_head"]["bbox_head"]["in_channels"] = in_channels
    return model


class _Detector(torch.nn.Module):
    """FastRCNN's modules under their checkpoint names: backbone.*, roi_head.*."""

    def __init__(self, model: dict):
        super().__init__()
        from mmaction.models.backbones.resnet3d_slowfast import ResNet3dSlowFast
        from mmaction.models.backbones.resnet3d_slowonly import ResNet3dSlowOnly
        from mmaction.models.roi_heads.bbox_heads.bbox_head import BBoxHeadAVA
        from mmaction.models.roi_heads.roi_extractors.single_straight3d import (
            SingleRoIExtractor3D,
        )

        def args(d):
            return {k: v for k, v in d.items() if k != "type"}

        backbone = model["backbone"]
        cls = ResNet3dSlowFast if backbone["type"].endswith("ResNet3dSlowFast") else ResNet3dSlowOnly
        self.backbone = cls(**args(backbone))
        self.roi_head = torch.nn.Module()
        self.roi_head.bbox_roi_extractor = SingleRoIExtractor3D(
            **args(model["roi_head"]["bbox_roi_extractor"]))
        self.roi_head.bbox_head = BBoxHeadAVA(**args(model["roi_head"]["bbox_head"]))

    def forward(self, inputs, rois, img_shape):
        feats = self.backbone(inputs)
        # AVARoIHead._bbox_forward, then its predict_bbox's predict_by_feat.
        bbox_feats, _ = self.roi_head.bbox_roi_extractor(feats, rois)
        cls_score = self.roi_head.bbox_head(bbox_feats)
        result = self.roi_head.bbox_head.predict_by_feat(
            rois=(rois,), cls_scores=(cls_score,), batch_img_metas=[{"img_shape": img_shape}])
        return cls_score, result[0].scores, bbox_feats


def make(stem: str, mmaction2: Path, out: Path) -> None:
    import json

    from mmengine.config import Config

    cfg = Config.fromfile(str(mmaction2 / CONFIGS[stem]))
    cfg.model = _narrow(cfg)
    torch.manual_seed(0)
    detector = _Detector(cfg.model).eval()
    own = detector.state_dict()
    tensors = [[k, list(v.shape), "int64" if v.dtype == torch.int64 else "float32"] for k, v in own.items()]
    state = make_weights(tensors, WEIGHT_SEED)
    detector.load_state_dict(state, strict=True)
    inputs = make_input(INPUT_SHAPE[stem], INPUT_SEED)
    with torch.no_grad():
        logits, scores, roi_feats = detector(inputs, ROIS.clone(), tuple(INPUT_SHAPE[stem][3:]))
    import mmengine

    meta = {"cfg": cfg.pretty_text, "mmengine_version": mmengine.__version__,
            "time": "20261206_000000", "epoch": 20, "iter": 0, "seed": 0}
    recipe = {"made_by": "tools/parity/make_mmaction_fixtures.py", "config": CONFIGS[stem],
              "width": WIDTH, "seed": WEIGHT_SEED, "sha256": weights_sha256(state),
              "meta": meta, "tensors": tensors}
    (out / f"{stem}.json").write_text(json.dumps(recipe, indent=0))
    torch.save({"input_shape": list(INPUT_SHAPE[stem]), "input_seed": INPUT_SEED,
                "rois": ROIS.clone(), "logits": logits, "scores": scores,
                "roi_features": roi_feats.amax(dim=(2, 3, 4))},
               out / f"{stem}_io.pt")
    print(f"{stem}: {len(tensors)} tensors, {sum(v.numel() for v in state.values()):,} values; "
          f"scores {tuple(scores.shape)} in [{scores.min():.3f}, {scores.max():.3f}], "
          f"logits std {logits.std():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmaction2", type=Path, required=True, help="an MMAction2 checkout")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "models")
    args = parser.parse_args()
    _install_stand_ins(args.mmaction2.resolve())
    torch.set_num_threads(1)
    for stem in CONFIGS:
        make(stem, args.mmaction2.resolve(), args.out)


if __name__ == "__main__":
    main()
