"""A slow, loop-by-loop transcription of the frame-mAP rules, to test the vectorised one.

Written to be read next to the official code: one keyframe, one class, one detection at a
time, a real ``heapq`` for the 50-per-keyframe cap, the official IoU formula and the
official AP loop. The tie rules avadet chooses are spelled out where they apply:

- equal scores: file order (earlier row first), for matching and for the AP ranking;
- gt order within a keyframe: descending person id, then file order (PySlowFast: file order);
- identical heap tuples: the file position is the tuple's last element, so the earlier row
  is evicted first (the official heap cannot tell identical tuples apart).
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np

from avadet.evaluation.protocols import Protocol


def _iou(det: tuple, gt: tuple, float32: bool) -> float:
    """Official np_box_ops.iou for one pair of ``(x1, y1, x2, y2)`` boxes."""
    ftype = np.float32 if float32 else np.float64
    dx1, dy1, dx2, dy2 = (ftype(v) for v in det)
    gx1, gy1, gx2, gy2 = (ftype(v) for v in gt)
    ih = max(np.float64(0.0), np.float64(min(dy2, gy2) - max(dy1, gy1)))
    iw = max(np.float64(0.0), np.float64(min(dx2, gx2) - max(dx1, gx1)))
    inter = np.float64(ih) * np.float64(iw)
    area_d = (dy2 - dy1) * (dx2 - dx1)
    area_g = (gy2 - gy1) * (gx2 - gx1)
    union = np.float64(area_d + area_g) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(inter) / np.float64(union))


def slow_frame_map(
    gt_rows: list[tuple],
    pred_rows: list[tuple],
    class_ids: list[int],
    excluded: list[tuple],
    proto: Protocol,
) -> tuple[float, dict[int, float], dict[int, int]]:
    """``gt_rows``: ``(video, timestamp, x1, y1, x2, y2, action, person_id)``;
    ``pred_rows``: ``(video, timestamp, x1, y1, x2, y2, action, score)``; ``excluded``:
    ``(video, timestamp)``. Returns ``(mAP, {id: AP or nan}, {id: num_gt})``."""
    classes = set(class_ids)
    excluded_keys = {(v, int(t)) for v, t in excluded}

    # Ground truth: class filter, exclusions, per-keyframe lists in the official order.
    gt_file_keys = {(r[0], int(r[1])) for r in gt_rows} - excluded_keys
    gt_by_key: dict[tuple, list[tuple[int, tuple]]] = defaultdict(list)
    num_gt = {c: 0 for c in class_ids}
    for idx, row in enumerate(gt_rows):
        if row[6] not in classes:
            continue
        key = (row[0], int(row[1]))
        if key in excluded_keys:
            if proto.excluded_gt_are_misses:
                num_gt[row[6]] += 1
            continue
        num_gt[row[6]] += 1
        gt_by_key[key].append((idx, row))
    for key in gt_by_key:
        if proto.gt_by_person_id:
            gt_by_key[key].sort(key=lambda item: (-item[1][7], item[0]))
        else:
            gt_by_key[key].sort(key=lambda item: item[0])

    # Predictions: class filter, score floor, the heap.
    entries: dict[tuple, list] = defaultdict(list)
    for idx, row in enumerate(pred_rows):
        video, stamp, x1, y1, x2, y2, action, score = row
        if action not in classes:
            continue
        if proto.min_score is not None and score < proto.min_score:
            continue
        key = (video, int(stamp))
        item = (score, action, y1, x1, y2, x2, idx)
        heap = entries[key]
        if proto.cap is None or len(heap) < proto.cap:
            heapq.heappush(heap, item)
        elif score > heap[0][0]:
            heapq.heapreplace(heap, item)

    results: dict[int, list[tuple[float, int, bool]]] = defaultdict(list)
    for key, items in entries.items():
        if key in excluded_keys:
            continue
        if key not in gt_by_key:
            if proto.unmatched_keyframes == "ignore_evaluated":
                continue
            if proto.unmatched_keyframes == "ignore_file" and key not in gt_file_keys:
                continue
        kept = []
        for score, action, y1, x1, y2, x2, idx in items:
            box = (x1, y1, x2, y2)
            if proto.float32:
                box = tuple(np.float32(v) for v in box)
            if proto.drop_degenerate_boxes:
                if not (box[0] < box[2] and box[1] < box[3]):
                    continue
            elif box[0] > box[2] or box[1] > box[3]:
                continue
            kept.append((score, action, box, idx))
        for c in sorted({k[1] for k in kept}):
            dets = [k for k in kept if k[1] == c]
            if proto.match_by_score:
                dets.sort(key=lambda d: (-d[0], d[3]))
            else:
                dets.sort(key=lambda d: d[3])
            gts = [row for _, row in gt_by_key.get(key, []) if row[6] == c]
            matched = [False] * len(gts)
            for score, _, box, idx in dets:
                tp = False
                if gts:
                    ious = np.array([_iou(box, g[2:6], proto.float32) for g in gts])
                    j = int(np.argmax(ious))
                    if ious[j] >= 0.5 and not matched[j]:
                        matched[j] = True
                        tp = True
                rank_score = float(np.float32(score)) if proto.float32 else score
                results[c].append((rank_score, idx, tp))

    per_class: dict[int, float] = {}
    for c in class_ids:
        if num_gt[c] == 0:
            per_class[c] = float("nan")
            continue
        dets = sorted(results.get(c, []), key=lambda d: (-d[0], d[1]))
        if not dets:
            per_class[c] = float("nan") if proto.skip_classes_without_detections else 0.0
            continue
        tp_count = fp_count = 0
        precision, recall = [], []
        for _, _, tp in dets:
            tp_count += tp
            fp_count += not tp
            precision.append(tp_count / (tp_count + fp_count))
            recall.append(tp_count / num_gt[c])
        recall = [0.0] + recall + [1.0]
        precision = [0.0] + precision + [0.0]
        for i in range(len(precision) - 2, -1, -1):
            precision[i] = max(precision[i], precision[i + 1])
        ap = 0.0
        for i in range(1, len(recall)):
            if recall[i] != recall[i - 1]:
                ap += (recall[i] - recall[i - 1]) * precision[i]
        per_class[c] = ap
    counted = [v for v in per_class.values() if not np.isnan(v)]
    mean_ap = float(np.mean(counted)) if counted else float("nan")
    return mean_ap, per_class, num_gt


def slow_heap_cap(rows: list[tuple], capacity: int) -> list[int]:
    """Indices of rows ``(key, score, action, x1, y1, x2, y2)`` the official heap keeps."""
    heaps: dict[object, list] = defaultdict(list)
    for idx, (key, score, action, x1, y1, x2, y2) in enumerate(rows):
        item = (score, action, y1, x1, y2, x2, idx)
        heap = heaps[key]
        if len(heap) < capacity:
            heapq.heappush(heap, item)
        elif score > heap[0][0]:
            heapq.heapreplace(heap, item)
    return sorted(item[-1] for heap in heaps.values() for item in heap)
