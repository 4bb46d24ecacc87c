"""Person detectors side by side: torchvision's Faster R-CNN R50-FPN at 800 px (``avadet
detect``'s default) against the faster choices (the R50-FPN at a smaller input size,
MobileNetV3-Large FPN, MobileNetV3-Large 320 FPN): seconds per keyframe, and recall of the
ground-truth persons at IoU 0.5 where COCO weights are at hand.

``python tools/benchmark.py persons [--config DATASET.yaml] [--weights NAME=FILE ...]
[--size 400] [--frames 4] [--rounds 2] [--threads 2]``

- Speed: each detector on the same ``--frames`` keyframe centre frames of the val split,
  interleaved over ``--rounds`` rounds; seconds per keyframe and the R50-FPN 800's time over
  each one's (best round). Each detector twice: as avadet builds it on a CPU (BNs folded,
  oneDNN-fused convolutions, ``avadet.fusion``) and as torchvision's modules are ("unfused"). The cost does not depend on the weights' values, so random weights
  stand in where no COCO weights are given.
- Recall: for each detector with COCO weights (``--weights r50_fpn=FILE``, or torchvision's own
  file in the torch hub cache), the boxes of every annotated val keyframe
  (:func:`avadet.api.detect_persons`), then per score threshold the share of ground-truth
  persons (distinct boxes of the val annotations) that a kept box overlaps at IoU >= 0.5, and
  the boxes kept per keyframe. Without weights the recall is not measured (random weights
  find nothing): the table says so.
- Data: ``--config`` of any dataset (real AVA val is the meaningful one); without it, a
  synthetic dataset (``avadet make-synthetic``'s generator, ``--width x --height``) whose
  persons are drawn figures (striped ellipse, head, arm), not photographs: a COCO detector's
  recall there says how it copes with those figures, not how it does on people.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

THRESHOLDS = (0.5, 0.7, 0.8)


def _recall(gt, found, threshold: float) -> tuple[float, float]:
    """Share of gt person boxes matched by a box scoring >= ``threshold`` at IoU >= 0.5, and
    boxes kept per keyframe."""
    from avadet.boxes import pairwise_iou

    key = ["video_id", "timestamp"]
    kept = found[found["score"] >= threshold]
    groups = {k: g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
              for k, g in kept.groupby(key)}
    hit = total = 0
    for k, g in gt.groupby(key):
        boxes = g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
        total += len(boxes)
        det = groups.get(k)
        if det is not None and len(det):
            hit += int((pairwise_iou(boxes, det).max(1) >= 0.5).sum())
    n_keyframes = max(gt[key].drop_duplicates().shape[0], 1)
    return hit / max(total, 1), len(kept) / n_keyframes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py persons",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="a dataset's config (default: a synthetic dataset)")
    parser.add_argument("--weights", nargs="*", default=[], metavar="NAME=FILE",
                        help="COCO weights per detector model (r50_fpn, mobilenet_v3_fpn, "
                             "mobilenet_v3_320)")
    parser.add_argument("--size", type=int, default=400, help="the smaller R50-FPN input")
    parser.add_argument("--frames", type=int, default=4, help="keyframes timed per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--work", help="folder for the synthetic dataset")
    parser.add_argument("--no-recall", action="store_true", help="speed only")
    args = parser.parse_args(argv)

    from avadet.api import detect_persons
    from avadet.config import load_config
    from avadet.data.sampling import keyframe_to_frame_index
    from avadet.engine.build import dataset_files
    from avadet.io import read_annotations
    from avadet.persons.torchvision_backend import (
        DETECTOR_MODELS,
        TorchvisionPersonDetector,
    )

    torch.set_num_threads(args.threads)
    tmp = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="avadet_persons_"))
    if args.config:
        cfg_path = Path(args.config)
    else:
        from avadet.synthetic import make_synthetic

        root = make_synthetic(tmp / "syn", preset="tiny", num_train_videos=1, num_val_videos=2,
                              duration=12, width=args.width, height=args.height,
                              write_frames=False)
        cfg_path = root / "config.yaml"
    cfg = load_config(cfg_path)
    files = dataset_files(cfg.data)
    gt = read_annotations(files.require("val_annotations"))
    gt = gt[["video_id", "timestamp", "x1", "y1", "x2", "y2"]].drop_duplicates()

    weights = dict(item.split("=", 1) for item in args.weights)
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    choices = [("R50-FPN 800 (default)", "r50_fpn", None),
               (f"R50-FPN {args.size}", "r50_fpn", args.size),
               ("MobileNetV3-L FPN 800", "mobilenet_v3_fpn", None),
               ("MobileNetV3-L 320 FPN", "mobilenet_v3_320", None)]

    def weights_of(arch: str):
        if arch in weights:
            return weights[arch]
        cached = hub / DETECTOR_MODELS[arch].url.rsplit("/", 1)[1]
        return cached if cached.is_file() else None

    # The frames timed: the first --frames annotated keyframes' centre frames.
    keys = gt[["video_id", "timestamp"]].drop_duplicates().head(args.frames)
    source = files.source()
    frames = []
    for vid, ts in keys.itertuples(index=False):
        centre = int(keyframe_to_frame_index(float(ts), fps=cfg.data.fps,
                                             segment_start=cfg.data.segment_start))
        frames.append(source.read(vid, np.array([centre]))[0])
    h, w = frames[0].shape[:2]

    # Each detector as avadet builds it on a CPU (BNs folded, oneDNN convolutions with the
    # activations and residual adds fused: avadet.fusion) and as torchvision's modules are.
    detectors = {}
    unfused = []
    for name, arch, size in choices:
        for fused in (True, False):
            label = name if fused else f"{name}, unfused"
            torch.manual_seed(0)
            path = weights_of(arch)
            detectors[label] = TorchvisionPersonDetector(
                weights=None if path is None else "default", weights_path=path, arch=arch,
                min_size=size, score_threshold=min(THRESHOLDS), onednn=None if fused else False)
            detectors[label].detect(frames[:1])  # warm-up outside the timings
            if not fused:
                unfused.append((label, arch, size))

    print(f"# Person detectors on {len(frames)} keyframes of {w}x{h} ({cfg_path}), CPU, "
          f"{args.threads} torch threads, torch {torch.__version__}, {args.rounds} interleaved "
          "rounds\n")
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for _ in range(args.rounds):
        for name, det in detectors.items():
            start = time.perf_counter()
            det.detect(frames)
            times[name].append((time.perf_counter() - start) / len(frames))
    ref = min(times[choices[0][0]])
    print("| detector | weights | parameters (M) | s per keyframe (best) | all rounds | "
          "speed vs R50-FPN 800 |")
    print("| --- | --- | ---: | ---: | --- | ---: |")
    for name, arch, _ in choices + unfused:
        det = detectors[name]
        params = sum(p.numel() for p in det.model.parameters()) / 1e6
        got = weights_of(arch)
        kind = "random" if got is None else (Path(got).name if arch in weights else "COCO (hub)")
        print(f"| {name} | {kind} | {params:.1f} | {min(times[name]):.3f} | "
              f"{', '.join(f'{t:.3f}' for t in times[name])} | {ref / min(times[name]):.1f}x |")

    if args.no_recall:
        return 0
    print(f"\nRecall of the {len(gt)} ground-truth persons on "
          f"{gt[['video_id', 'timestamp']].drop_duplicates().shape[0]} annotated val keyframes, "
          "IoU >= 0.5 (boxes kept per keyframe in brackets):\n")
    print("| detector | " + " | ".join(f"score >= {t}" for t in THRESHOLDS) + " |")
    print("| --- |" + " ---: |" * len(THRESHOLDS))
    for name, arch, _ in choices:
        if weights_of(arch) is None:
            print(f"| {name} | not measured: no COCO weights here |"
                  + " - |" * (len(THRESHOLDS) - 1))
            continue
        found = detect_persons(cfg_path, detectors[name], tmp / f"{arch}_{name[-3:]}.csv",
                               keyframes="annotated", progress=False)
        cells = [_recall(gt, found, t) for t in THRESHOLDS]
        print(f"| {name} | " + " | ".join(f"{r:.3f} ({n:.1f})" for r, n in cells) + " |",
              flush=True)
    return 0
