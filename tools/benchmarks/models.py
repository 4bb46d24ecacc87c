"""CPU inference throughput: avadet's SlowFast R50 AVA detector vs pytorchvideo's
``slowfast_r50_detection`` with the same weights, measured in the same run.

``python tools/benchmark.py models [--size 128] [--batches 1 4] [--repeats 5] [--compile]``

``python tools/benchmark.py models --deploy-suite [--height 256 --width 455] [--repeats 5]``:
the full-size suite of issue #16. Per architecture (SlowFast R50, SlowFast R101 50_50, Slow
R50), interleaved in one run: pytorchvideo's model (SlowFast R50: ``slowfast_r50_detection``;
Slow: ``slow_r50_detection``; same random weights loaded into avadet), avadet eager, the
deployment path ``avadet test`` / ``avadet detect`` use (``prepare_for_inference``), that path
in bf16, and ONNX Runtime on ``avadet export``'s graph; s/clip, ratio, max |score diff| and
the fraction of this CPU's measured fp32 convolution peak (channels-last oneDNN Conv3d of
ResNet shapes, measured first).

Both models get identical random weights (pytorchvideo's are loaded into avadet through
``load_checkpoint``) and identical inputs; the outputs are checked to agree before timing.
Timings interleave the two models and report the median, so load from other processes on the
machine hits both alike. Variants of avadet's model (``torch.inference_mode``, channels-last
3D memory format, bfloat16 autocast, ``torch.compile``) are timed against the same baseline.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch


def _inputs(batch: int, size: int, t_fast: int, alpha: int, boxes_per_clip: int):
    gen = torch.Generator().manual_seed(0)
    slow = torch.randn(batch, 3, t_fast // alpha, size, size, generator=gen)
    fast = torch.randn(batch, 3, t_fast, size, size, generator=gen)
    rows = []
    for b in range(batch):
        for k in range(boxes_per_clip):
            x1, y1 = 4.0 + 9 * k, 6.0 + 5 * k
            rows.append([float(b), x1, y1, min(size - 1.0, x1 + size / 2), min(size - 1.0, y1 + size / 2)])
    return [slow, fast], torch.tensor(rows)


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py models", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="frame side in pixels (256 = AVA test)")
    parser.add_argument("--frames", type=int, default=32, help="Fast pathway frames")
    parser.add_argument("--boxes", type=int, default=3, help="person boxes per clip")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to build)")
    parser.add_argument("--no-variants", action="store_true", help="only avadet vs pytorchvideo")
    parser.add_argument("--deploy-suite", action="store_true",
                        help="the full-size deployment suite (see the module doc)")
    parser.add_argument("--height", type=int, default=256, help="--deploy-suite frame height")
    parser.add_argument("--width", type=int, default=455, help="--deploy-suite frame width")
    parser.add_argument("--archs", nargs="+",
                        default=["slowfast_r50", "slowfast_r101", "slow_r50", "synthetic_cpu"],
                        help="--deploy-suite architectures")
    parser.add_argument("--no-onnx", action="store_true", help="--deploy-suite without ONNX Runtime")
    parser.add_argument("--ablations", action="store_true",
                        help="--deploy-suite: also BN folding alone and channels-last alone")
    parser.add_argument("--accuracy", action="store_true",
                        help="avadet test through each inference path (--config, --checkpoint): "
                             "frame-mAP and score differences (no timing)")
    parser.add_argument("--config", help="--accuracy: the val set's config")
    parser.add_argument("--checkpoint", help="--accuracy: a trained checkpoint")
    args = parser.parse_args(argv)
    if args.accuracy:
        from benchmarks.models_deploy import accuracy

        return accuracy(args)
    if args.deploy_suite:
        from benchmarks.models_deploy import deploy_suite

        return deploy_suite(args)

    try:
        from pytorchvideo.models.hub import slowfast_r50_detection
    except ImportError:
        print("pytorchvideo is needed as the reference: pip install pytorchvideo")
        return 2
    from avadet.models import build_model, load_checkpoint

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reference = slowfast_r50_detection(pretrained=False).eval()
    with torch.no_grad():  # non-trivial BN so that no residual branch is silent
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.uniform_(0.5, 1.0)
                m.running_var.uniform_(0.5, 1.5)
    ours = build_model(fusion_kernel_size=7, roi_aligned=False).eval()
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(reference.state_dict(), Path(tmp) / "ptv.pt")
        load_checkpoint(ours, Path(tmp) / "ptv.pt")

    variants: dict[str, Callable] = {}

    def plain(model, x, b):
        with torch.no_grad():
            return model(x, b)

    def inference(model, x, b):
        with torch.inference_mode():
            return model(x, b)

    cl_model = build_model(fusion_kernel_size=7, roi_aligned=False).eval()
    cl_model.load_state_dict(ours.state_dict())
    cl_model = cl_model.to(memory_format=torch.channels_last_3d)

    def channels_last(model, x, b):
        with torch.inference_mode():
            x = [t.contiguous(memory_format=torch.channels_last_3d) for t in x]
            return cl_model(x, b)

    def bf16(model, x, b):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x, b)

    if not args.no_variants:
        variants = {
            "inference_mode": inference,
            "channels_last_3d": channels_last,
            "bf16 autocast": bf16,
        }
        if args.compile:
            compiled = torch.compile(ours)

            def compiled_fn(model, x, b):
                with torch.inference_mode():
                    return compiled(x, b)

            variants["torch.compile"] = compiled_fn

    print(
        f"# avadet vs pytorchvideo, SlowFast R50 AVA (dilated res5), CPU, {args.threads} threads, "
        f"{args.frames // 4}+{args.frames} frames at {args.size}x{args.size}, {args.boxes} boxes/clip, "
        f"median of {args.repeats}, torch {torch.__version__}\n"
    )
    print("| batch | model | clips/s | ratio vs pytorchvideo | max abs diff of scores |")
    print("| --- | --- | --- | --- | --- |")
    for batch in args.batches:
        x, b = _inputs(batch, args.size, args.frames, 4, args.boxes)
        with torch.no_grad():
            expected = reference(list(x), b)
        runners = {
            "pytorchvideo": lambda x=x, b=b: plain(reference, list(x), b),
            "avadet": lambda x=x, b=b: plain(ours, x, b),
        }
        for name, fn in variants.items():
            runners[f"avadet + {name}"] = lambda fn=fn, x=x, b=b: fn(ours, x, b)
        diffs = {}
        for name, run in runners.items():  # warm-up, and the agreement check
            out = run()
            diffs[name] = (out.float() - expected).abs().max().item()
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.repeats):
            for name, run in runners.items():
                times[name].append(_time(run))
        base = batch / statistics.median(times["pytorchvideo"])
        for name in runners:
            rate = batch / statistics.median(times[name])
            print(f"| {batch} | {name} | {rate:.3f} | {rate / base:.3f} | {diffs[name]:.1e} |")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
