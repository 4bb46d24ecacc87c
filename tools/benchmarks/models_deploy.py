"""The full-size deployment suite of ``tools/benchmark.py models --deploy-suite`` (issue #16):
pytorchvideo, avadet eager, avadet's deployment path (fp32 and bf16) and ONNX Runtime,
interleaved, per architecture, with each one's fraction of the measured fp32 conv peak."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ResNet-50 convolution shapes of a full-size SlowFast (Slow pathway, 8 frames at 256x455
# input): (in, out, kernel, (T, H, W) of the input).
PEAK_SHAPES = [
    ("res2 conv b 1x3x3 64->64", 64, 64, (1, 3, 3), (8, 64, 114)),
    ("res3 conv b 1x3x3 128->128", 128, 128, (1, 3, 3), (8, 32, 57)),
    ("res4 conv b 1x3x3 256->256", 256, 256, (1, 3, 3), (8, 16, 29)),
    ("res4 conv a 3x1x1 1024->256", 1024, 256, (3, 1, 1), (8, 16, 29)),
    ("res4 conv c 1x1x1 256->1024", 256, 1024, (1, 1, 1), (8, 16, 29)),
    ("res5 conv a 3x1x1 2048->512", 2048, 512, (3, 1, 1), (8, 16, 29)),
    ("res5 conv b 1x3x3 512->512 (8x16x29)", 512, 512, (1, 3, 3), (8, 16, 29)),
]


def _conv_seconds(x: torch.Tensor, weight: torch.Tensor, repeats: int) -> float:
    pad = tuple(k // 2 for k in weight.shape[2:])
    return _median_time(lambda: F.conv3d(x, weight, padding=pad), repeats)


def conv_peak(repeats: int) -> tuple[float, list[tuple[str, float]]]:
    """fp32 multiply-adds per second of single channels-last Conv3d layers (oneDNN), and of a
    2048^3 matmul; the best conv rate is the peak the models are compared with."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for name, cin, cout, k, (t, h, w) in PEAK_SHAPES:
            x = torch.randn(1, cin, t, h, w, generator=gen).contiguous(memory_format=torch.channels_last_3d)
            weight = torch.randn(cout, cin, *k, generator=gen).contiguous(
                memory_format=torch.channels_last_3d)
            macs = cout * cin * k[0] * k[1] * k[2] * t * h * w
            rows.append((name, macs / _conv_seconds(x, weight, repeats)))
        a = torch.randn(2048, 2048, generator=gen)
        b = torch.randn(2048, 2048, generator=gen)
        seconds = _median_time(lambda: a @ b, repeats)
        rows.append(("matmul 2048^3 (reference)", 2048**3 / seconds))
    peak = max(rate for name, rate in rows if not name.startswith("matmul"))
    return peak, rows


def _boxes(height: int, width: int, count: int) -> torch.Tensor:
    rows = []
    for k in range(count):
        x1, y1 = 10.0 + 40 * k, 8.0 + 20 * k
        rows.append([0.0, x1, y1, min(width - 1.0, x1 + width / 3), min(height - 1.0, y1 + height / 2)])
    return torch.tensor(rows)


def _randomize_bn(model: torch.nn.Module) -> None:
    with torch.no_grad():  # non-trivial BN so that no residual branch is silent
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def _calibrate_bn(model: torch.nn.Module, frames: int, height: int, width: int) -> None:
    """Random BN gains below 1, then BN statistics of the model's own activations on one
    random clip of the size timed: with He-initialised convolutions and made-up statistics
    the 101 layers and non-local blocks of R101 blow the logits up (1e28) until every sigmoid
    score is exactly 0 or 1, and a max |score diff| of 0 would then say nothing."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    with torch.no_grad():
        for m in bns:
            m.weight.uniform_(0.5, 1.0)
            m.bias.uniform_(-0.1, 0.1)
            m.momentum = 1.0  # the running statistics become this batch's
    model.train()
    with torch.no_grad():
        model(torch.randn(1, 3, frames, height, width, generator=torch.Generator().manual_seed(2)),
              _boxes(height, width, 2))
    model.eval()


def _models(arch: str, height: int = 256, width: int = 455):
    """(reference name or None, reference model or None, avadet model, Fast frames)."""
    from avadet.models import PUBLISHED_MODELS, load_checkpoint

    torch.manual_seed(0)
    if arch == "synthetic_cpu":  # configs/synthetic/cpu.yaml's model: width 8, 16 frames
        from avadet.config import load_config

        root = Path(__file__).resolve().parents[2]
        ours = PUBLISHED_MODELS["slowfast_32x2_r50"](
            **{k: v for k, v in vars(load_config(root / "configs/synthetic/cpu.yaml").model).items()
               if k in ("width_per_group", "num_classes", "alpha", "beta_inv")}).eval()
        _randomize_bn(ours)
        return None, None, ours, 16
    if arch == "slowfast_r101":
        ours = PUBLISHED_MODELS["slowfast_32x2_r101_50_50"]().eval()
        _calibrate_bn(ours, 32, height, width)
        return None, None, ours, 32
    from pytorchvideo.models import hub

    if arch == "slowfast_r50":
        ref, ours, frames = hub.slowfast_r50_detection(pretrained=False), \
            PUBLISHED_MODELS["slowfast_r50_detection"](), 32
        name = "pytorchvideo slowfast_r50_detection"
    else:
        ref, ours, frames = hub.slow_r50_detection(pretrained=False), \
            PUBLISHED_MODELS["slow_8x8_r50"](), 4
        name = "pytorchvideo slow_r50_detection"
    ref.eval()
    _randomize_bn(ref)
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(ref.state_dict(), Path(tmp) / "ptv.pt")
        load_checkpoint(ours, Path(tmp) / "ptv.pt")
    return name, ref, ours.eval(), frames


def _onnx_runner(model, frames: int, height: int, width: int, threads: int, tmp: str):
    from avadet.models.export import OnnxRuntimeModel, export_onnx

    start = time.perf_counter()
    path = export_onnx(model, Path(tmp) / "model.onnx", frames=frames, height=height, width=width)
    runtime = OnnxRuntimeModel(path, threads=threads)
    return runtime, time.perf_counter() - start


def _suite_one(arch: str, args: argparse.Namespace, peak: float, bf16: bool,
               notes: list[str]) -> list[str]:
    """Time one architecture's paths, interleaved; the table rows."""
    from avadet.models import count_conv_flops
    from avadet.models.deploy import prepare_for_inference

    rows: list[str] = []
    height, width = (96, 128) if arch == "synthetic_cpu" else (args.height, args.width)
    ref_name, ref, ours, frames = _models(arch, height, width)
    clip = torch.randn(1, 3, frames, height, width, generator=torch.Generator().manual_seed(1))
    boxes = _boxes(height, width, args.boxes)
    pathways = ours.backbone.pathways(clip)
    macs = count_conv_flops(ours, [p.clone() for p in pathways], boxes).total

    # Each runner binds what it needs as defaults (the function's locals, not a loop's).
    runners: dict[str, Callable[[], torch.Tensor]] = {}
    if ref is not None:
        def run_ref(ref=ref, pathways=pathways, boxes=boxes):
            with torch.no_grad():
                return ref(list(pathways) if len(pathways) > 1 else pathways[0], boxes)
        runners[ref_name] = run_ref

    def run_eager(ours=ours, clip=clip, boxes=boxes):
        with torch.no_grad():
            return ours(clip, boxes)
    runners["avadet eager"] = run_eager
    deployed = prepare_for_inference(ours)
    runners["avadet deploy (test/detect path)"] = lambda d=deployed: d(clip, boxes)
    unfused = prepare_for_inference(ours, onednn=False)
    runners["avadet deploy without oneDNN fusion (before)"] = lambda d=unfused: d(clip, boxes)
    if bf16:
        deployed_bf16 = prepare_for_inference(ours, dtype=torch.bfloat16)
        runners["avadet deploy + bf16"] = lambda d=deployed_bf16: d(clip, boxes)
    frozen = prepare_for_inference(ours, torchscript=True)
    start = time.perf_counter()
    frozen(clip, boxes)
    notes.append(f"{arch}: TorchScript trace + freeze + first call {time.perf_counter() - start:.1f} s")
    runners["avadet deploy + TorchScript freeze (oneDNN)"] = lambda d=frozen: d(clip, boxes)
    if args.ablations:  # which part of the deployment form pays
        fold_only = prepare_for_inference(ours, channels_last=False)
        runners["avadet deploy, BN folding only"] = lambda d=fold_only: d(clip, boxes)
        layout_only = prepare_for_inference(ours, fold_bn=False)
        runners["avadet deploy, channels-last only"] = lambda d=layout_only: d(clip, boxes)
    if args.compile:
        compiled = torch.compile(deployed)
        start = time.perf_counter()
        compiled(clip, boxes)
        notes.append(f"{arch}: torch.compile's first call {time.perf_counter() - start:.1f} s")
        runners["avadet deploy + torch.compile"] = lambda c=compiled: c(clip, boxes)
    tmp: Optional[tempfile.TemporaryDirectory] = None
    if not args.no_onnx:
        tmp = tempfile.TemporaryDirectory()
        runtime, seconds = _onnx_runner(ours, frames, height, width, args.threads, tmp.name)
        notes.append(f"{arch}: export + ONNX Runtime session {seconds:.1f} s")
        runners["ONNX Runtime (avadet export)"] = lambda r=runtime: r(clip, boxes)
    expected = next(iter(runners.values()))()
    diffs = {name: (run().float() - expected).abs().max().item() for name, run in runners.items()}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(next(iter(times.values())))
    for name in runners:
        t = statistics.median(times[name])
        rate = macs / t
        rows.append(f"| {arch} {height}x{width} ({macs / 1e9:.1f} G) | {name} | {t:.3f} | {base / t:.2f} | "
                     f"{diffs[name]:.1e} | {rate / 1e9:.1f} | {rate / peak:.2f} |")
    if tmp is not None:
        tmp.cleanup()
    return rows


def deploy_suite(args: argparse.Namespace) -> int:
    from avadet.models.deploy import cpu_supports_bf16

    torch.set_num_threads(args.threads)
    print(f"# deployment suite: {args.height}x{args.width}, batch 1, {args.boxes} boxes, "
          f"{args.threads} torch threads, median of {args.repeats} interleaved, torch "
          f"{torch.__version__}; load average at start {os.getloadavg()[0]:.2f}\n")
    peak, rows = conv_peak(max(args.repeats, 3))
    print("| fp32 reference op | G multiply-adds/s |\n| --- | --- |")
    for name, rate in rows:
        print(f"| {name} | {rate / 1e9:.1f} |")
    print(f"\npeak (best conv): {peak / 1e9:.1f} G multiply-adds/s\n")
    bf16 = cpu_supports_bf16()
    table = ["| architecture | path | s/clip | ratio vs first row | max abs score diff | "
             "G multiply-adds/s | fraction of fp32 peak |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    notes = []
    for arch in args.archs:
        rows_out = _suite_one(arch, args, peak, bf16, notes)
        table += rows_out
        print("\n".join(rows_out), flush=True)
    print()
    print("\n".join(table))
    for note in notes:
        print(f"- {note}")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    return 0


def accuracy(args: argparse.Namespace) -> int:
    """``avadet test`` on one checkpoint and val set through each inference path: the max
    |score diff| from the model as loaded (``--no-deploy``) and the frame-mAP of each."""
    from avadet import api

    torch.set_num_threads(args.threads)
    paths = {"as loaded (test.deploy=false)": ["test.deploy=false"],
             "deploy fp32 (default)": [],
             "deploy bf16 (test.precision=bf16)": ["test.precision=bf16"]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, overrides) in enumerate(paths.items()):
            results[name] = api.test(args.config, args.checkpoint, list(overrides),
                                     output_csv=Path(tmp) / f"{i}.csv", progress=False)
    key = ["video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id"]
    base = next(iter(results.values()))
    print(f"# inference paths on {args.config} with {args.checkpoint}: "
          f"{len(base.predictions)} score rows\n")
    print("| path | frame-mAP | change | max abs score diff | mean abs score diff |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, result in results.items():
        merged = base.predictions.merge(result.predictions, on=key, how="inner")
        assert len(merged) == len(base.predictions)
        diff = (merged["score_x"] - merged["score_y"]).abs()
        m = result.eval_result.map
        print(f"| {name} | {m:.6f} | {m - base.eval_result.map:+.6f} | {diff.max():.1e} | "
              f"{diff.mean():.1e} |")
    return 0
