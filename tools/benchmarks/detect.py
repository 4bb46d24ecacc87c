"""``avadet detect`` throughput on a synthetic clip: seconds of video per second, split into
decoding, person detection and the action model (and drawing + encoding the annotated video).

``python tools/benchmark.py detect [--seconds 20] [--width 320 --height 240] [--threads 2]``

``python tools/benchmark.py detect --compare [--seconds 6] [--width 640 --height 360]
[--rounds 2] [--batch 2]``: the path of when issue #16 was filed against today's default (the
action model's deployment form, the person detectors' oneDNN rewrite) and the faster
detectors, interleaved on the same clip with the full-size AVA SlowFast R50; see
:func:`compare`.

The reference, measured in the same run, is a plain sequential decode of the same file to RGB
(what any video tool pays before doing anything): each configuration is reported as seconds of
video per second and as its ratio to that. Configurations:

- boxes from a CSV (the synthetic dataset's person-box file), with and without writing the
  annotated video;
- torchvision Faster R-CNN R50-FPN (random weights: the COCO weights cannot be downloaded on
  this machine; the cost is the same) at ``min_size`` 240 (the clip's own size) and 800
  (torchvision's default), score threshold 0.5;
- action model: the synthetic CPU SlowFast (R50 layout, width 8, 16x2 frames, the clip's short
  side) and, with ``--ava-model``, the AVA SlowFast R50 (width 64, 32x2, short side 256).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def _decode_only(path: Path) -> float:
    import av

    from avadet.data.sources import frame_to_rgb

    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame_to_rgb(frame)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py detect", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="clip length (>= 5)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--ava-model", action="store_true",
                        help="also time the full-size AVA SlowFast R50 (slow on a CPU)")
    parser.add_argument("--no-r50", action="store_true", help="skip the R50-FPN detector rows")
    parser.add_argument("--work", help="folder for the synthetic clip (default: a temp folder)")
    parser.add_argument("--compare", action="store_true",
                        help="today's path against the batched and threaded one (see compare)")
    parser.add_argument("--rounds", type=int, default=2, help="--compare: interleaved rounds")
    parser.add_argument("--batch", type=int, default=2,
                        help="--compare: keyframes per action-model batch of the new path")
    parser.add_argument("--configs", default="",
                        help="--compare: comma-separated subset of the configurations")
    parser.add_argument("--small-model", action="store_true",
                        help="--compare: the synthetic width-8 SlowFast instead of the AVA R50 "
                             "(a check that the script runs, not a measurement)")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(args)

    from avadet.config import load_config
    from avadet.detect import ClipDetector, ClipSettings
    from avadet.engine import class_ids_of
    from avadet.io import read_person_boxes
    from avadet.models import build_model, count_conv_flops
    from avadet.persons import CsvPersonBoxes
    from avadet.persons.torchvision_backend import TorchvisionPersonDetector
    from avadet.synthetic import make_synthetic

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tmp = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="avadet_detect_bench_"))
    root = make_synthetic(tmp / "syn", preset="tiny", num_train_videos=1, num_val_videos=1,
                          duration=args.seconds, width=args.width, height=args.height,
                          write_frames=False)
    boxes_csv = root / "annotations" / "ava_val_predicted_boxes.csv"
    vid = read_person_boxes(boxes_csv)["video_id"].iloc[0]
    video = root / "videos" / f"{vid}.mp4"
    cfg = load_config(root / "config.yaml")
    class_ids = class_ids_of(cfg)

    models = {"synthetic-CPU SlowFast (w8, 16x2)": cfg}
    if args.ava_model:
        models["AVA SlowFast R50 (w64, 32x2, 256)"] = load_config(None, [
            "data.num_frames=32", "data.sampling_rate=2", "data.test_short_side=256",
            f"model.num_classes={len(class_ids)}"])

    def describe(c) -> str:
        model = build_model(c).eval()
        params = sum(p.numel() for p in model.parameters())
        s = c.data.test_short_side
        w = round(args.width / args.height * s)
        t = c.data.num_frames
        flops = count_conv_flops(model, [torch.zeros(1, 3, t // c.model.alpha, s, w),
                                         torch.zeros(1, 3, t, s, w)],
                                 torch.tensor([[0, 1.0, 1.0, w / 2, s - 2.0]]))
        return f"{params / 1e6:.2f} M parameters, {flops.total / 1e9:.2f} GFLOPs per clip at {s}x{w}"

    runs = [("CSV boxes, no annotated video", "csv", False)]
    runs.append(("CSV boxes + annotated video", "csv", True))
    if not args.no_r50:
        runs += [("R50-FPN min_size 240 + annotated video", 240, True),
                 ("R50-FPN min_size 800 + annotated video", 800, True)]

    reference = min(_decode_only(video) for _ in range(2))
    n_seconds = float(args.seconds)
    print(f"# avadet detect on a {args.seconds} s synthetic clip, {args.width}x{args.height} at 30 fps "
          f"(H.264), keyframe every 1 s, CPU, {args.threads} threads, torch {torch.__version__}\n")
    print(f"Reference: plain decode to RGB: {reference:.2f} s = **{n_seconds / reference:.1f} s of "
          "video per second**.\n")
    print("| action model | persons, output | video s / s | vs decode-only | wall (s) | decode | "
          "persons | action model | draw + encode | boxes/keyframe |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    notes = []
    r50_params = 0
    for model_name, mcfg in models.items():
        notes.append(f"- {model_name}: {describe(mcfg)}")
        torch.manual_seed(0)
        model = build_model(mcfg).eval()
        # The big model's cost per keyframe does not depend on the person source: one row.
        for label, persons_kind, annotate in (runs if mcfg is cfg else runs[:1]):
            if persons_kind == "csv":
                persons = CsvPersonBoxes(boxes_csv, min_score=0.8)
            else:
                persons = TorchvisionPersonDetector(weights=None, score_threshold=0.5,
                                                    min_size=persons_kind, max_size=1333)
                r50_params = sum(p.numel() for p in persons.model.parameters())
            runner = ClipDetector(model, ClipSettings.from_config(mcfg), class_ids, persons)
            out = tmp / "annotated.mp4" if annotate else None
            result = runner.run(video, timestamp_offset=900.0, annotated_path=out, progress=False)
            t = result.timings
            people = sum(len(k.boxes) for k in result.keyframes) / max(len(result.keyframes), 1)
            rate = n_seconds / t["total"]
            print(f"| {model_name} | {label} | {rate:.2f} | {rate / (n_seconds / reference):.3f} | "
                  f"{t['total']:.1f} | {t['decode']:.1f} | {t['persons']:.1f} | {t['actions']:.1f} | "
                  f"{t['render']:.1f} | {people:.1f} |", flush=True)
    print()
    print("\n".join(notes))
    if not args.no_r50:
        print(f"- R50-FPN: torchvision fasterrcnn_resnet50_fpn, random weights "
              f"({r50_params / 1e6:.1f} M parameters); min_size is the short side it resizes "
              "each keyframe to; with random weights the number of boxes it keeps is arbitrary.")
    return 0


class _EveryKeyframeBoxes:
    """The synthetic person-box CSV's boxes of one video for every keyframe: those of the
    nearest annotated second (the generator annotates 2 s in to 2 s before the end), so that
    each keyframe of the clip has its people scored, as on a real video."""

    needs_keys = True

    def __init__(self, csv):
        self.csv = csv
        self.times = None

    def detect(self, frames, keys=None):
        import numpy as np

        out = []
        for vid, t in keys:
            if self.times is None:
                self.times = np.array(sorted(ts for v, ts in self.csv._boxes if v == vid))
            nearest = float(self.times[np.abs(self.times - t).argmin()])
            out.append(self.csv.boxes_at(vid, nearest))
        return out

    def describe(self) -> str:
        return "CSV boxes"


class _DetectorCostCsvBoxes:
    """A person detector that runs ``detector`` on each keyframe (its full cost) but hands the
    action model the keyframe's boxes from the synthetic person-box CSV: with random weights
    a COCO detector finds no person, and the action model would never run. Looks at pixels
    for the runner (``needs_keys`` False), so the new path may put it in its thread."""

    needs_keys = False

    def __init__(self, detector, boxes):
        self.detector, self.boxes = detector, boxes

    def detect(self, frames, keys=None):
        self.detector.detect(frames)
        return self.boxes.detect(frames, keys)

    def describe(self) -> str:
        return self.detector.describe()


def _today(walls: dict, detector_name: str):
    """The reference walls of a row: today's path with the same detector, else with the
    default detector as it ran then."""
    return walls.get(("today", detector_name)) or walls.get(
        ("today", "R50-FPN 800 (default), unfused"))


def compare(args: argparse.Namespace) -> int:
    """``avadet detect`` as it ran when issue #16 was filed ("today": the action model as
    loaded, the R50-FPN unfused) against its default now (the action model's deployment form,
    the detectors' oneDNN rewrite), interleaved round by round on one synthetic clip with the
    full-size AVA SlowFast R50 (random weights), annotated video written, one keyframe per
    action-model forward, one thread of work. Person detectors (random weights, CSV boxes
    handed on; see ``_DetectorCostCsvBoxes``): R50-FPN at 800 (the default), R50-FPN at 400,
    MobileNetV3-Large FPN (800), MobileNetV3-Large 320 FPN, and the CSV boxes alone; plus
    the batched and threaded path tried before. Each row: seconds of video per second, its
    ratio to today's path with the same detector in the same round (else today's default),
    and the time per stage (persons and actions overlap in the threaded path, so the stages
    add up to more than the wall time)."""
    import os

    from avadet.config import load_config
    from avadet.detect import ClipDetector, ClipSettings
    from avadet.engine import class_ids_of
    from avadet.engine.inference import inference_model
    from avadet.io import read_person_boxes
    from avadet.models import build_model
    from avadet.persons import CsvPersonBoxes
    from avadet.persons.torchvision_backend import TorchvisionPersonDetector
    from avadet.synthetic import make_synthetic

    torch.set_num_threads(args.threads)
    tmp = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="avadet_detect_cmp_"))
    root = make_synthetic(tmp / "syn", preset="tiny", num_train_videos=1, num_val_videos=1,
                          duration=args.seconds, width=args.width, height=args.height,
                          write_frames=False)
    boxes_csv = root / "annotations" / "ava_val_predicted_boxes.csv"
    vid = read_person_boxes(boxes_csv)["video_id"].iloc[0]
    video = root / "videos" / f"{vid}.mp4"
    class_ids = class_ids_of(load_config(root / "config.yaml"))
    mcfg = load_config(None, ["data.num_frames=32", "data.sampling_rate=2",
                              "data.test_short_side=256", f"model.num_classes={len(class_ids)}"])
    if args.small_model:
        mcfg = load_config(root / "config.yaml")
    torch.manual_seed(0)
    model = build_model(mcfg).eval()
    settings = ClipSettings.from_config(mcfg)
    csv = _EveryKeyframeBoxes(CsvPersonBoxes(boxes_csv, min_score=0.8))

    def frcnn(arch: str, size=None, onednn=True):
        torch.manual_seed(0)
        det = TorchvisionPersonDetector(weights=None, arch=arch, min_size=size,
                                        score_threshold=0.5, onednn=onednn)
        return _DetectorCostCsvBoxes(det, csv)

    # Detectors as `avadet detect` builds them on a CPU now (BNs folded, oneDNN-fused
    # convolutions), and the default one as it ran when issue #16 was filed ("unfused").
    detectors = {
        "R50-FPN 800 (default)": frcnn("r50_fpn"),
        "R50-FPN 800 (default), unfused": frcnn("r50_fpn", onednn=False),
        "R50-FPN 400": frcnn("r50_fpn", 400),
        "MobileNetV3-L FPN 800": frcnn("mobilenet_v3_fpn"),
        "MobileNetV3-L 320 FPN": frcnn("mobilenet_v3_320"),
        "CSV boxes (no detector)": csv,
    }
    # The action model as loaded ("eager", what `avadet detect` ran when #16 was filed) and
    # its deployment form (`inference_model`: what it runs now on a CPU by default).
    models = {"eager": model, "deploy": inference_model(model, "cpu")}
    k = args.batch
    one = dict(batch_keyframes=1, persons_thread=False, decode_thread=False)
    new = dict(batch_keyframes=k, persons_thread=True, decode_thread=True)
    # (path name, detector, runner settings, action model); "today" rows are the reference of
    # the rows with the same detector (or of all, the default detector's).
    configs = [
        ("today", "R50-FPN 800 (default), unfused", one, "eager"),
        ("default now", "R50-FPN 800 (default)", one, "deploy"),
        ("default now", "R50-FPN 400", one, "deploy"),
        ("default now", "MobileNetV3-L FPN 800", one, "deploy"),
        ("default now", "MobileNetV3-L 320 FPN", one, "deploy"),
        ("today", "CSV boxes (no detector)", one, "eager"),
        ("default now", "CSV boxes (no detector)", one, "deploy"),
        # What was tried before (docs/benchmarks.md): batching, the detector's thread.
        (f"batch {k}, threads", "R50-FPN 800 (default)", new, "deploy"),
        (f"batch {k}", "CSV boxes (no detector)", dict(one, batch_keyframes=k), "deploy"),
    ]
    if args.configs:
        wanted = [c.strip() for c in args.configs.split(",")]
        configs = [c for c in configs if f"{c[0]} | {c[1]}" in wanted or c[0] in wanted]

    # Warm-up outside the timings: the first forward of each shape builds oneDNN primitives.
    import numpy as np

    h2 = settings.short_side or args.height
    w2 = round(args.width * h2 / args.height)
    clip = np.zeros((settings.num_frames, h2, w2, 3), np.uint8)
    box = np.array([[0.2, 0.2, 0.6, 0.9]], np.float32)
    for action in {action for *_, action in configs}:
        warm = ClipDetector(models[action], settings, class_ids, csv)
        for n in sorted({speed["batch_keyframes"] for _, _, speed, _ in configs}):
            warm.score_batch([clip] * n, (h2, w2), [box] * n)
    frame = np.zeros((args.height, args.width, 3), np.uint8)
    for detector in {detectors[name] for _, name, *_ in configs}:
        if isinstance(detector, _DetectorCostCsvBoxes):
            detector.detector.detect([frame])

    n_seconds = float(args.seconds)
    action_model = ("synthetic SlowFast (w8, 16x2; a check, not a measurement)" if args.small_model
                    else "AVA SlowFast R50 (w64, 32x2, short side 256, random weights)")
    print(f"# avadet detect, today's path vs the new one: {args.seconds} s synthetic clip, "
          f"{args.width}x{args.height} at 30 fps (H.264), keyframe every 1 s, {action_model}, "
          "annotated video written; CPU, "
          f"{args.threads} torch threads, torch {torch.__version__}; {args.rounds} interleaved "
          f"rounds; load average at the start {os.getloadavg()[0]:.2f}\n", flush=True)
    print("| round | path | person detector | video s / s | vs today, same detector | wall (s) "
          "| decode | persons | actions | render | keyframes |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    walls: dict[tuple[str, str], list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        for name, detector_name, speed, action in configs:
            runner = ClipDetector(models[action], settings, class_ids, detectors[detector_name],
                                  **speed)
            result = runner.run(video, timestamp_offset=900.0, annotated_path=tmp / "a.mp4",
                                progress=False)
            t = result.timings
            walls.setdefault((name, detector_name), []).append(t["total"])
            base = _today(walls, detector_name)
            ratio = base[-1] / t["total"] if base else float("nan")
            print(f"| {round_} | {name} | {detector_name} | {n_seconds / t['total']:.3f} | "
                  f"{ratio:.2f}x | {t['total']:.1f} | {t['decode']:.2f} | {t['persons']:.1f} | "
                  f"{t['actions']:.1f} | {t['render']:.2f} | {len(result.keyframes)} |",
                  flush=True)
    print(f"\nBest of {args.rounds} rounds (ratio: today's best with the same detector, or "
          "with the default one where today's path was not run with it, over this best):\n")
    print("| path | person detector | video s / s | vs today | wall (s) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for (name, detector_name), times in walls.items():
        base = _today(walls, detector_name)
        best = min(times)
        ratio = min(base) / best if base else float("nan")
        print(f"| {name} | {detector_name} | {n_seconds / best:.3f} | {ratio:.2f}x | {best:.1f} |")
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}")
    return 0
