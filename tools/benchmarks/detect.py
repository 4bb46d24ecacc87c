"""``avadet detect`` throughput on a synthetic clip: seconds of video per second, split into
decoding, person detection and the action model (and drawing + encoding the annotated video).

``python tools/benchmark.py detect [--seconds 20] [--width 320 --height 240] [--threads 2]``

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
    parser.add_argument("--seconds", type=int, default=20, help="clip length")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--ava-model", action="store_true",
                        help="also time the full-size AVA SlowFast R50 (slow on a CPU)")
    parser.add_argument("--no-r50", action="store_true", help="skip the R50-FPN detector rows")
    parser.add_argument("--work", help="folder for the synthetic clip (default: a temp folder)")
    args = parser.parse_args(argv)

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
