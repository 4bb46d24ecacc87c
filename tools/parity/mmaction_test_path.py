"""Reference rows of MMAction2's own AVA test path on avadet's tiny parity dataset.

Not part of avadet or its tests: run it in the scratch environment of
make_mmaction_fixtures.py (torch, torchvision, mmengine, mmcv-lite 2.1, numpy, opencv),
pointing at an MMAction2 checkout::

    git -C <mirror> archive HEAD | tar -x -C /tmp/mmaction2
    OMP_NUM_THREADS=1 python tools/parity/mmaction_test_path.py --mmaction2 /tmp/mmaction2

It writes tests/fixtures/pyslowfast_dataset/reference/mmaction_slowfast_r50_4x16x1_w8_rows.csv:
every (video_id, timestamp, x1, y1, x2, y2, action id, score) row of MMAction2's test path on
tests/fixtures/pyslowfast_dataset with the checkpoint of the recipe
tests/fixtures/models/mmaction_slowfast_r50_4x16x1_w8.json (SlowFast R50 4x16x1 AVA config,
base width 8), scores to 9 significant digits.

What runs is MMAction2's own code: ``AVADataset`` (``test_mode=True``, the config's
val/test dataloader settings) with the config's val/test pipeline ``SampleAVAFrames(32, 2,
test_mode=True)``, ``RawFrameDecode``, ``Resize((-1, 256))``, ``FormatShape('NCTHW',
collapse=True)``, ``PackActionInputs``; the model's ``ActionDataPreprocessor`` (ImageNet
mean/std), ``ResNet3dSlowFast``, ``AVARoIHead`` (its ``predict`` / ``predict_bbox`` /
``_bbox_forward``) with ``SingleRoIExtractor3D`` and ``BBoxHeadAVA.predict_by_feat``; and
``AVAMetric.process`` (``bbox2result``) + ``det2csv`` (what ``results2csv`` writes) for the
rows. The dataset is presented to MMAction2 in its layout in a temporary folder (the committed
dataset is not modified): ``<vid>/img_%05d.jpg`` symlinks to ``<vid>/<vid>_%06d.jpg``, the
predicted boxes as its proposal pickle ``{"<vid>,<ts>": [[x1, y1, x2, y2, score], ...]}``.
The dataset's fields: ``fps=30``, ``timestamp_start=900`` (the default) and
``timestamp_end=905``, so that ``shot_info = (0, (905 - 900) * 30) = (0, 150)`` and
``SampleAVAFrames`` clamps a clip to the 150 frames (0-based 0..149, files 1..150), as
MMAction2 does for a video of that length; ``person_det_score_thr`` the default 0.9 (the
config sets none).

Where the rows differ from what MMAction2 writes (see the fixture README):

- ``AVAMetric`` keeps a (box, class) only if its score is > ``action_thr`` (0.002 by default,
  in ``bbox2result``) and ``results2csv`` writes every float with 4 decimals. The reference
  is taken with ``action_thr=0`` (every score of this model is > 0) and 9 significant digits;
  the script reports how many rows the 0.002 filter would drop.
- ``AVADataset`` drops the keyframes of ``exclude_file`` (``vid_land,0904``) from the test
  set. The reference is the run without ``exclude_file``; the script checks that the run with
  it gives the same rows less those of ``vid_land,0904``.

Stand-ins (mmcv-lite has no compiled ops; mmdet is not installed), in ``_install`` below and
make_mmaction_fixtures.py's ``_install_stand_ins``:

- ``mmcv.ops.RoIAlign`` = torchvision's ``roi_align`` with the same output_size,
  spatial_scale, sampling_ratio and aligned;
- ``mmdet.models.roi_heads.StandardRoIHead``: the base class of ``AVARoIHead``; only its
  constructor (the extractor and head modules, ``test_cfg``, ``with_bbox``, ``with_shared_head``
  False as the configs have none) is stood in for,
  every method that runs is ``AVARoIHead``'s or ``BBoxHeadAVA``'s;
- ``mmdet.structures.bbox.bbox2roi``: ``[batch index, x1, y1, x2, y2]`` rows, as mmdet's;
- ``FastRCNN`` (mmdet's ``TwoStageDetector``) test step: ``extract_feat`` (the backbone; no
  neck), the data samples' proposals as the RPN results, ``roi_head.predict``, the result set
  as ``pred_instances`` (``_predict`` below);
- type-annotation names (``SamplingResult``, ``InstanceList``, ``SampleList``) and the
  ``mmaction.utils`` / ``mmaction.structures`` / ``mmaction.evaluation`` names the modules
  import, bound to MMAction2's own functions; MMAction2's packages are entered without
  running their ``__init__`` files.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import sys
import tempfile
import types
from pathlib import Path
from typing import Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_mmaction_fixtures import ROOT, _Detector, _install_stand_ins, _narrow  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from fixtures.mmaction_reference import make_weights, read_recipe, weights_sha256  # noqa: E402

STEM = "mmaction_slowfast_r50_4x16x1_w8"
DATASET = ROOT / "tests" / "fixtures" / "pyslowfast_dataset"
CONFIG = "configs/detection/slowfast/slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py"
VIDEOS = ("vid_land", "vid_port")
NUM_FRAMES, FPS, TIMESTAMP_START = 150, 30, 900
EXCLUDED = ("vid_land", 904)


def _install(mmaction2: Path) -> None:
    _install_stand_ins(mmaction2)
    for package in ("mmaction.evaluation", "mmaction.evaluation.functional",
                    "mmaction.evaluation.metrics", "mmaction.models.roi_heads",
                    "mmaction.models.detectors"):
        module = types.ModuleType(package)
        module.__path__ = [str(mmaction2.joinpath(*package.split(".")))]
        sys.modules[package] = module
    import mmaction.structures.action_data_sample as action_data_sample
    import mmaction.structures.bbox.transforms as bbox_transforms
    import mmaction.utils.misc as misc

    utils = sys.modules["mmaction.utils"]
    for name in ("get_random_string", "get_shm_dir", "get_thread_id"):
        setattr(utils, name, getattr(misc, name))
    utils.ConfigType = dict
    utils.SampleList = list
    structures = sys.modules["mmaction.structures"]
    structures.ActionDataSample = action_data_sample.ActionDataSample
    structures.bbox2result = bbox_transforms.bbox2result
    import mmaction.evaluation.functional.ava_utils as ava_utils

    evaluation = sys.modules["mmaction.evaluation"]
    for name in ("ava_eval", "read_labelmap", "results2csv"):
        setattr(evaluation, name, getattr(ava_utils, name))

    class StandardRoIHead(torch.nn.Module):
        """The constructor of mmdet's StandardRoIHead for built modules."""

        def __init__(self, bbox_roi_extractor, bbox_head, test_cfg=None):
            super().__init__()
            self.bbox_roi_extractor, self.bbox_head = bbox_roi_extractor, bbox_head
            self.test_cfg = test_cfg

        @property
        def with_bbox(self):
            return self.bbox_head is not None

        @property
        def with_shared_head(self):  # the AVA configs have no shared head
            return False

    def bbox2roi(bbox_list):
        rois = [torch.cat([b.new_full((b.size(0), 1), i), b[:, :4]], -1)
                for i, b in enumerate(bbox_list)]
        return torch.cat(rois, 0)

    for name in ("mmdet.models.roi_heads", "mmdet.structures", "mmdet.structures.bbox"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["mmdet.models.roi_heads"].StandardRoIHead = StandardRoIHead
    sys.modules["mmdet.structures.bbox"].bbox2roi = bbox2roi


def _mmaction_layout(tmp: Path) -> dict[str, Path]:
    """The dataset in MMAction2's layout: frame symlinks, the proposal pickle, the files."""
    ann = DATASET / "annotations"
    for vid in VIDEOS:
        folder = tmp / "rawframes" / vid
        folder.mkdir(parents=True)
        for k in range(1, NUM_FRAMES + 1):
            (folder / f"img_{k:05d}.jpg").symlink_to(DATASET / "frames" / vid / f"{vid}_{k:06d}.jpg")
    proposals: dict[str, list[list[float]]] = {}
    with open(ann / "ava_val_predicted_boxes.csv") as f:
        for row in csv.reader(f):
            key = f"{row[0]},{int(row[1]):04d}"
            proposals.setdefault(key, []).append([float(v) for v in (*row[2:6], row[7])])
    pkl = tmp / "proposals.pkl"
    pkl.write_bytes(pickle.dumps({k: np.array(v) for k, v in proposals.items()}))
    return dict(ann_file=ann / "ava_val_v2.2.csv", exclude_file=ann / "ava_val_excluded_timestamps_v2.2.csv",
                label_file=ann / "ava_action_list_v2.2.pbtxt", proposal_file=pkl,
                frames=tmp / "rawframes")


def _predict(detector, roi_head, preprocessor, packed) -> object:
    """FastRCNN's (mmdet TwoStageDetector's) test step on one packed sample."""
    data = preprocessor({"inputs": [packed["inputs"]], "data_samples": [packed["data_samples"]]},
                        False)
    inputs, samples = data["inputs"], data["data_samples"]
    x = detector.backbone(inputs)  # extract_feat: no neck
    rpn_results_list = [s.proposals for s in samples]
    results = roi_head.predict(x, rpn_results_list, samples, rescale=True)
    samples[0].pred_instances = results[0]
    return samples[0]


def run(with_exclusions: bool, thr: float, detector, roi_head, preprocessor,
        files: dict[str, Path], dump: Optional[dict] = None) -> list[tuple]:
    """MMAction2's test set and pipeline, the model, ``AVAMetric.process`` with ``action_thr``
    ``thr`` and ``det2csv``: the rows of every keyframe (``with_exclusions``: less the
    exclusion file's)."""
    from mmaction.datasets.ava_dataset import AVADataset
    from mmaction.datasets.transforms.formatting import FormatShape, PackActionInputs
    from mmaction.datasets.transforms.loading import RawFrameDecode, SampleAVAFrames
    from mmaction.datasets.transforms.processing import Resize
    from mmaction.evaluation.functional.ava_utils import det2csv
    from mmaction.evaluation.metrics.ava_metric import AVAMetric

    pipeline = [SampleAVAFrames(clip_len=32, frame_interval=2, test_mode=True),
                RawFrameDecode(io_backend="disk"), Resize(scale=(-1, 256)),
                FormatShape(input_format="NCTHW", collapse=True), PackActionInputs()]
    dataset = AVADataset(
        ann_file=str(files["ann_file"]), pipeline=pipeline,
        exclude_file=str(files["exclude_file"]) if with_exclusions else None,
        label_file=str(files["label_file"]), proposal_file=str(files["proposal_file"]),
        data_prefix=dict(img=str(files["frames"])), test_mode=True,
        timestamp_start=TIMESTAMP_START, timestamp_end=TIMESTAMP_START + NUM_FRAMES // FPS,
        fps=FPS)
    metric = AVAMetric(ann_file=str(files["ann_file"]), exclude_file=str(files["exclude_file"]),
                       label_file=str(files["label_file"]), action_thr=thr)
    with torch.no_grad():
        for i in range(len(dataset)):
            packed = dataset[i]
            sample = _predict(detector, roi_head, preprocessor, packed)
            metric.process([packed], [sample.to_dict()])
            if dump is not None:
                dump[(sample.video_id, int(sample.timestamp))] = {
                    "frame_files": dataset.pipeline.transforms[0](dataset.get_data_info(i))["frame_inds"],
                    "inputs": packed["inputs"], "proposals": sample.proposals.bboxes,
                    "scores": sample.pred_instances.scores}
            print(sample.video_id, sample.timestamp, tuple(packed["inputs"].shape),
                  packed["data_samples"].proposals.bboxes.tolist())
    return det2csv(metric.results, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmaction2", type=Path, required=True, help="an MMAction2 checkout")
    parser.add_argument("--out", type=Path,
                        default=DATASET / "reference" / f"{STEM}_rows.csv")
    parser.add_argument("--dump", type=Path, default=None,
                        help="also save each keyframe's frame files, input, boxes and scores")
    args = parser.parse_args()
    mmaction2 = args.mmaction2.resolve()
    _install(mmaction2)
    torch.set_num_threads(1)
    from mmaction.models.data_preprocessors.data_preprocessor import ActionDataPreprocessor
    from mmaction.models.roi_heads.roi_head import AVARoIHead
    from mmengine.config import Config

    recipe = read_recipe(ROOT / "tests" / "fixtures" / "models" / f"{STEM}.json")
    cfg = Config.fromfile(str(mmaction2 / recipe["config"]))
    assert recipe["config"] == CONFIG and recipe["width"] == 8
    cfg.model = _narrow(cfg)
    detector = _Detector(cfg.model).eval()
    state = make_weights(recipe["tensors"], recipe["seed"])
    assert weights_sha256(state) == recipe["sha256"]
    detector.load_state_dict(state, strict=True)
    roi_head = AVARoIHead(detector.roi_head.bbox_roi_extractor, detector.roi_head.bbox_head,
                          test_cfg=cfg.model["test_cfg"]["rcnn"]).eval()
    pre_cfg = {k: v for k, v in cfg.model["data_preprocessor"].items() if k != "type"}
    preprocessor = ActionDataPreprocessor(**pre_cfg)
    with tempfile.TemporaryDirectory() as tmp:
        files = _mmaction_layout(Path(tmp))
        common = (detector, roi_head, preprocessor, files)
        dump: dict = {}
        raw = run(False, 0.0, *common, dump=dump)
        excluded = run(True, 0.0, *common)
        written = run(True, 0.002, *common)  # AVAMetric's default action_thr
    rest = [r for r in raw if (r[0], r[1]) != EXCLUDED]
    assert excluded == rest, "the exclusion run is not the raw rows less the excluded keyframe"
    assert len(raw) > len(rest)
    print(f"{len(raw)} rows ({len(raw) - len(rest)} of the excluded {EXCLUDED}); "
          f"action_thr 0.002 keeps {len(written)} of the {len(excluded)} rows of the test set; "
          f"scores in [{min(r[7] for r in raw):.4g}, {max(r[7] for r in raw):.4g}]")
    if args.dump is not None:
        torch.save(dump, args.dump)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        for vid, ts, x1, y1, x2, y2, label, score in raw:
            f.write(f"{vid},{int(ts):04d},{x1:.6f},{y1:.6f},{x2:.6f},{y2:.6f},{label},{score:.9g}\n")


if __name__ == "__main__":
    main()
