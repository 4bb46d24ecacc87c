"""Run PySlowFast's own AVA test path on a tiny AVA-format dataset and save its prediction rows:
the reference that tests/engine/test_pyslowfast_test_path.py compares avadet's test path with.

Run it with a Python that has PySlowFast's dependencies (not avadet's venv), e.g.::

    python3.11 -m venv /work/scratch/pyslowfast/venv
    /work/scratch/pyslowfast/venv/bin/pip install torch==2.14.1 torchvision==0.29.1 fvcore \\
        iopath simplejson psutil opencv-python-headless pandas av scikit-learn matplotlib \\
        tensorboard pytorchvideo
    git -C <SlowFast git dir> archive HEAD slowfast ava_evaluation | tar -x -C <src>
    OMP_NUM_THREADS=1 /work/scratch/pyslowfast/venv/bin/python \\
        tools/parity/pyslowfast_test_path.py --pyslowfast <src> \\
        --dataset tests/fixtures/pyslowfast_dataset --make-dataset \\
        --out tests/fixtures/pyslowfast_dataset/reference \\
        tests/fixtures/models/pyslowfast_slowfast_32x2_r50_short_w8.pyth \\
        tests/fixtures/models/pyslowfast_slow_8x8_r50_c2_w8.pyth

What runs is PySlowFast's: ``slowfast.datasets.ava_dataset.Ava`` (split "test"), the loader's
``detection_collate``, ``slowfast.models.build_model`` on the checkpoint's own ``cfg`` with its
``model_state``, the loop of ``tools/test_net.py perform_test`` (detection branch) and
``slowfast.utils.ava_eval_helper`` (``get_ava_eval_data``, ``write_results``,
``evaluate_ava``). Only the shims of :func:`install_shims` are added, none of PySlowFast's files
is changed.

Per checkpoint ``<stem>`` it writes to ``--out``:

- ``<stem>_rows.csv``: every row ``get_ava_eval_data`` produces (``video_id, timestamp, x1,
  y1, x2, y2, action_id, score``), scores with 9 significant digits (float32 exact);
- ``<stem>_write_results.csv``: the same rows as PySlowFast's ``write_results`` writes them
  (3-decimal boxes, 4-decimal scores);
- ``<stem>_map.json``: PySlowFast's own frame-mAP of those rows (``evaluate_ava``, with the
  dataset's exclusions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import types
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
LABELMAP_80 = REPO / "tests" / "fixtures" / "ava_action_list_v2.2.pbtxt"

# The tiny dataset: two 5-second videos at 30 fps, one landscape and one portrait, 60x95: the
# short-side resize to 224 or 256 floors the long side (354.7 -> 354, 405.3 -> 405), so
# PySlowFast's single box scale differs from a per-axis one.
VIDEOS = {"vid_land": (60, 95), "vid_port": (95, 60)}  # (height, width)
NUM_FRAMES = 150
# Person boxes (``ava_val_predicted_boxes.csv``): score 0.85 and 0.88 pass the SlowFast
# threshold (0.8) but not the Slow-only one (0.9); 0.5 and 0.3 pass neither; vid_land,0904 is
# excluded and its clip runs past the last frame (clamped).
PREDICTED_BOXES = [
    "vid_land,0902,0.104,0.125,0.552,0.981,,0.95",
    "vid_land,0902,0.503,0.062,0.917,0.734,,0.85",
    "vid_land,0902,0.300,0.300,0.400,0.400,,0.5",
    "vid_land,0903,0.611,0.157,1.000,1.000,,0.99",
    "vid_land,0904,0.020,0.033,0.487,0.655,,0.92",
    "vid_port,0902,0.081,0.102,0.793,0.618,,0.97",
    "vid_port,0902,0.233,0.508,0.998,0.997,,0.91",
    "vid_port,0903,0.146,0.211,0.702,0.877,,0.88",
    "vid_port,0905,0.100,0.100,0.500,0.500,,0.3",
]
GT = [
    "vid_land,0902,0.100,0.120,0.550,0.980,12,0",
    "vid_land,0902,0.100,0.120,0.550,0.980,79,0",
    "vid_land,0902,0.500,0.060,0.920,0.730,14,1",
    "vid_land,0903,0.610,0.160,1.000,1.000,12,0",
    "vid_land,0904,0.020,0.030,0.490,0.650,80,0",
    "vid_port,0902,0.080,0.100,0.790,0.620,17,0",
    "vid_port,0902,0.230,0.510,1.000,1.000,80,1",
    "vid_port,0903,0.150,0.210,0.700,0.880,12,0",
]
EXCLUSIONS = ["vid_land,0904"]


def frame_pixels(rng: np.random.RandomState, height: int, width: int, t: int,
                 blobs: np.ndarray) -> np.ndarray:
    """A smooth BGR frame: a colour gradient and moving blobs (compresses to ~1.5 KB)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([xs / width * 200, ys / height * 200, (xs + ys) / (width + height) * 255], -1)
    for cx, cy, vx, vy, radius, b, g, r in blobs:
        px, py = (cx + vx * t) % width, (cy + vy * t) % height
        weight = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * radius ** 2))[..., None]
        img = img * (1 - weight) + np.array([b, g, r], np.float32) * weight
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: Path, seed: int = 0) -> None:
    """Write the tiny dataset under ``root``: ``frames/<vid>/<vid>_%06d.jpg`` (1-based, JPEG
    quality 90), ``frame_lists/val.csv``, ``annotations/`` (predicted boxes, gt, exclusions,
    the 80-class label map)."""
    rng = np.random.RandomState(seed)
    lines = ["original_vido_id video_id frame_id path labels"]
    for v, (vid, (height, width)) in enumerate(VIDEOS.items()):
        folder = root / "frames" / vid
        folder.mkdir(parents=True, exist_ok=True)
        blobs = np.column_stack([
            rng.uniform(0, width, 3), rng.uniform(0, height, 3), rng.uniform(-1, 1, (3, 2)),
            rng.uniform(4, 10, 3), rng.uniform(0, 255, (3, 3)),
        ])
        for t in range(NUM_FRAMES):
            name = f"{vid}_{t + 1:06d}.jpg"
            cv2.imwrite(str(folder / name), frame_pixels(rng, height, width, t, blobs),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
            lines.append(f'{vid} {v} {t} {vid}/{name} ""')
    (root / "frame_lists").mkdir(parents=True, exist_ok=True)
    (root / "frame_lists" / "val.csv").write_text("\n".join(lines) + "\n")
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    for name, rows in (("ava_val_predicted_boxes.csv", PREDICTED_BOXES), ("ava_val_v2.2.csv", GT),
                       ("ava_val_excluded_timestamps_v2.2.csv", EXCLUSIONS)):
        (ann / name).write_text("".join(r + "\n" for r in rows))
    (ann / "ava_action_list_v2.2.pbtxt").write_text(LABELMAP_80.read_text())


def install_shims() -> list[str]:
    """Make PySlowFast HEAD importable on Python 3.11 without detectron2 and with PyPI's
    pytorchvideo 0.1.5; returns what was shimmed (the fixture README lists it)."""
    import pytorchvideo.layers.distributed as ptv_distributed
    import torchvision

    shims = []

    def module(name: str, **attrs) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        return mod

    class ROIAlign(torchvision.ops.RoIAlign):
        """detectron2.layers.ROIAlign: the same arguments and semantics (output_size,
        spatial_scale, sampling_ratio, aligned; boxes ``(K, 5)`` with the batch index)."""

        def __init__(self, output_size, spatial_scale, sampling_ratio, aligned=True):
            super().__init__(output_size, spatial_scale, sampling_ratio, aligned)

    layers = module("detectron2.layers", ROIAlign=ROIAlign)
    module("detectron2", layers=layers)
    shims.append("detectron2.layers.ROIAlign = torchvision.ops.RoIAlign (same arguments)")
    # PySlowFast imports single-process helpers that PyPI's pytorchvideo 0.1.5 lacks.
    single_process = {
        "cat_all_gather": lambda tensors, local=False: tensors,
        "get_local_process_group": lambda: None,
        "get_local_rank": lambda: 0,
        "get_local_size": lambda: 1,
        "init_distributed_training": lambda *args, **kwargs: None,
    }
    for name, fn in single_process.items():
        if not hasattr(ptv_distributed, name):
            setattr(ptv_distributed, name, fn)
            shims.append(f"pytorchvideo.layers.distributed.{name}: single-process stand-in")

    class TrainingOnly:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("a training loss, not used by the test path")

    module("pytorchvideo.losses")
    module("pytorchvideo.losses.soft_target_cross_entropy",
           SoftTargetCrossEntropyLoss=TrainingOnly)
    shims.append("pytorchvideo.losses.soft_target_cross_entropy.SoftTargetCrossEntropyLoss: "
                 "a stub (training loss, never built by the test path)")
    # ava_eval_helper imports the evaluator from Meta's internal path; it is the repository's
    # top-level ava_evaluation package.
    import ava_evaluation

    module("vision")
    module("vision.fair")
    module("vision.fair.slowfast", ava_evaluation=ava_evaluation)
    sys.modules["vision.fair.slowfast.ava_evaluation"] = ava_evaluation
    shims.append("vision.fair.slowfast.ava_evaluation = the repository's ava_evaluation package")
    return shims


def pyslowfast_cfg(checkpoint: dict, dataset: Path):
    """The checkpoint's cfg on PySlowFast's defaults, pointed at ``dataset``, on the CPU."""
    from slowfast.config.defaults import assert_and_infer_cfg, get_cfg

    cfg = get_cfg()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(checkpoint["cfg"])
    try:
        cfg.merge_from_file(f.name)
    finally:
        os.unlink(f.name)
    cfg.NUM_GPUS = 0
    cfg.TEST.BATCH_SIZE = 1  # one keyframe a batch: the two videos differ in frame size
    cfg.DATA_LOADER.NUM_WORKERS = 0
    cfg.AVA.FRAME_DIR = str(dataset / "frames")
    cfg.AVA.FRAME_LIST_DIR = str(dataset / "frame_lists")
    cfg.AVA.TEST_LISTS = ["val.csv"]
    cfg.AVA.ANNOTATION_DIR = str(dataset / "annotations")
    cfg.AVA.TEST_PREDICT_BOX_LISTS = ["ava_val_predicted_boxes.csv"]
    cfg.AVA.EXCLUSION_FILE = "ava_val_excluded_timestamps_v2.2.csv"
    cfg.AVA.LABEL_MAP_FILE = "ava_action_list_v2.2.pbtxt"
    cfg.AVA.GROUNDTRUTH_FILE = "ava_val_v2.2.csv"
    return assert_and_infer_cfg(cfg)


def run_checkpoint(path: Path, dataset: Path, out: Path) -> dict:
    """PySlowFast's test path with the checkpoint at ``path``; writes the three files."""
    import torch
    from slowfast.datasets.ava_dataset import Ava
    from slowfast.datasets.loader import detection_collate
    from slowfast.models import build_model
    from slowfast.utils import ava_eval_helper

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    cfg = pyslowfast_cfg(checkpoint, dataset)
    data = Ava(cfg, "test")
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.TEST.BATCH_SIZE, shuffle=False,
                                         collate_fn=detection_collate)
    model = build_model(cfg)
    model.load_state_dict(checkpoint["model_state"])
    model.eval()
    preds, ori_boxes, metadata = [], [], []
    with torch.no_grad():  # tools/test_net.py perform_test, detection branch, on the CPU
        for inputs, _labels, _video_idx, _time, meta in loader:
            preds.append(model(inputs, meta["boxes"]).detach())
            ori_boxes.append(meta["ori_boxes"].detach())
            metadata.append(meta["metadata"].detach())
    preds_t, boxes_t, meta_t = (torch.cat(x).numpy() for x in (preds, ori_boxes, metadata))
    labelmap = dataset / "annotations" / cfg.AVA.LABEL_MAP_FILE
    categories, whitelist = ava_eval_helper.read_labelmap(str(labelmap))
    names = data._video_idx_to_name
    boxes, labels, scores = ava_eval_helper.get_ava_eval_data(
        preds_t, boxes_t, meta_t, whitelist, video_idx_to_name=names)
    stem = path.stem
    lines = []
    for key in boxes:  # get_ava_eval_data's boxes are [y1, x1, y2, x2]
        for box, label, score in zip(boxes[key], labels[key], scores[key]):
            lines.append(f"{key},{box[1]:.6f},{box[0]:.6f},{box[3]:.6f},{box[2]:.6f},"
                         f"{label},{score:.9g}\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}_rows.csv").write_text("".join(lines))
    ann = dataset / "annotations"
    groundtruth = ava_eval_helper.read_csv(str(ann / cfg.AVA.GROUNDTRUTH_FILE), whitelist)
    excluded = ava_eval_helper.read_exclusions(str(ann / cfg.AVA.EXCLUSION_FILE))
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # evaluate_ava writes detections_latest.csv to the working folder
        try:
            mean_ap = ava_eval_helper.evaluate_ava(
                preds_t, boxes_t, meta_t, excluded, whitelist, categories,
                groundtruth=groundtruth, video_idx_to_name=names)
            written = Path(scratch, "detections_latest.csv").read_text()
        finally:
            os.chdir(cwd)
    (out / f"{stem}_write_results.csv").write_text(written)
    summary = {"checkpoint": path.name, "keyframes": len(data), "boxes": int(len(preds_t)),
               "rows": len(lines), "mAP": float(mean_ap)}
    (out / f"{stem}_map.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="PySlowFast .pyth files")
    parser.add_argument("--pyslowfast", type=Path, required=True,
                        help="a PySlowFast checkout (holds slowfast/ and ava_evaluation/)")
    parser.add_argument("--dataset", type=Path, required=True, help="the tiny AVA dataset")
    parser.add_argument("--make-dataset", action="store_true", help="write it first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.make_dataset:
        make_dataset(args.dataset, args.seed)
    sys.path.insert(0, str(args.pyslowfast.resolve()))
    for shim in install_shims():
        print("shim:", shim)
    import torch

    torch.manual_seed(0)
    for path in args.checkpoints:
        print(json.dumps(run_checkpoint(path.resolve(), args.dataset.resolve(), args.out)))


if __name__ == "__main__":
    main()
