"""Boxes land on the actors: a tiny torchvision Faster R-CNN fitted for a few hundred steps on
the synthetic train frames finds the val video's actors through the torchvision backend.

The gt box of every actor on every frame comes from the generator's own geometry (the same
function that writes the gt CSV), so the check covers frames that are not keyframes too.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from avadet.boxes import pairwise_iou
from avadet.persons.torchvision_backend import TorchvisionPersonDetector
from avadet.synthetic import (
    actor_boxes,
    actor_tracks,
    make_synthetic,
    plan_dataset,
    resolve_spec,
)

STEPS = 300


def _frames(root, split: str, step: int):
    """``(frame (H, W, 3) RGB, gt boxes (K, 4) normalised)`` of every ``step``-th frame."""
    spec = resolve_spec("tiny")
    out = []
    for plan in plan_dataset(spec, 0):
        if plan.split != split:
            continue
        boxes = [actor_boxes(a, actor_tracks(a, plan.hidden, spec), spec) for a in plan.actors]
        for k in range(0, plan.num_frames, step):
            if plan.hidden[k]:
                continue
            path = root / "frames" / plan.video_id / f"{plan.video_id}_{k + 1:06d}.jpg"
            image = cv2.imread(str(path))[..., ::-1].copy()
            out.append((image, np.stack([b[k] for b in boxes]).astype(np.float32)))
    return out


def _tiny_faster_rcnn() -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.rpn import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    def conv(i, o, s):
        return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())

    backbone = nn.Sequential(conv(3, 16, 2), conv(16, 32, 2), conv(32, 32, 1), conv(32, 48, 2),
                             conv(48, 48, 1))
    backbone.out_channels = 48
    return FasterRCNN(
        backbone, num_classes=None,
        rpn_anchor_generator=AnchorGenerator(sizes=((16, 32, 64),), aspect_ratios=((1.0, 2.0, 3.0),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(48 * 49, 128), box_predictor=FastRCNNPredictor(128, 2),
        min_size=96, max_size=128, image_mean=[0.5] * 3, image_std=[0.25] * 3,
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=100,
        rpn_post_nms_top_n_test=30, rpn_batch_size_per_image=64, box_batch_size_per_image=32,
        box_detections_per_img=10,
    )


def _fit(model: nn.Module, train, steps: int) -> nn.Module:
    rng = np.random.default_rng(0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    model.train()
    for _ in range(steps):
        images, targets = [], []
        for i in rng.choice(len(train), 4, replace=False):
            image, boxes = train[i]
            h, w = image.shape[:2]
            pixels = boxes * np.array([w, h, w, h], np.float32)
            if rng.random() < 0.5:
                image = image[:, ::-1].copy()
                pixels[:, [0, 2]] = w - pixels[:, [2, 0]]
            images.append(torch.from_numpy(image).permute(2, 0, 1).float() / 255)
            targets.append({"boxes": torch.from_numpy(pixels),
                            "labels": torch.ones(len(pixels), dtype=torch.int64)})
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _recall_precision(detector: TorchvisionPersonDetector, frames) -> tuple[float, float]:
    """Greedy matching at IoU >= 0.5, detections best score first (AVA's rule)."""
    found = detector.detect([image for image, _ in frames])
    tp = fp = num_gt = 0
    for (_, gt), det in zip(frames, found):
        num_gt += len(gt)
        assert np.all((det.boxes >= 0) & (det.boxes <= 1))
        if len(det.boxes) == 0:
            continue
        iou = pairwise_iou(det.boxes, gt)  # both normalised: the backend's output is in frame units
        used: set[int] = set()
        for i in range(len(det.boxes)):
            j = int(iou[i].argmax())
            if iou[i, j] >= 0.5 and j not in used:
                used.add(j)
                tp += 1
            else:
                fp += 1
    return tp / num_gt, tp / max(tp + fp, 1)


def test_fitted_tiny_detector_finds_the_actors(tmp_path):
    torch.manual_seed(0)
    root = make_synthetic(tmp_path / "syn", preset="tiny")
    train, val = _frames(root, "train", 3), _frames(root, "val", 7)
    untrained = _tiny_faster_rcnn()
    fitted = _fit(_tiny_faster_rcnn(), train, STEPS)
    recall, precision = _recall_precision(
        TorchvisionPersonDetector(model=fitted, person_label=1, score_threshold=0.5), val)
    assert recall >= 0.85 and precision >= 0.85, (recall, precision)
    # The same network untrained does not: the check measures the fitting, not the matching.
    recall0, _ = _recall_precision(
        TorchvisionPersonDetector(model=untrained.eval(), person_label=1, score_threshold=0.5), val)
    assert recall0 < 0.3, recall0
