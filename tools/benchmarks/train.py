"""Training throughput on the CPU: ``avadet train``'s loop against bare PyTorch loops over the
same model, the same data and the same batch size, measured in the same run.

``python tools/benchmark.py train [--preset cpu] [--iters 40] [--batch 8] [--threads 2]``

Rows (all samples/s = clips per second, steady state: the first ``--warmup`` iterations of
each run are not timed):

- ``bare, in-memory batches``: forward, BCE, backward, SGD step on 4 batches collated once
  beforehand and cycled (compute only; the upper bound);
- ``bare, DataLoader``: the same loop reading the dataset through a plain DataLoader
  (``shuffle=True``, ``collate``): compute plus JPEG reading and transforms;
- ``avadet train, num_workers N``: the engine (seed-plan sampler, per-iteration lr, global
  loss reduction, progress bar, metrics.csv, checkpoint at each epoch end), timed from its own
  metrics rows.

The ratio column is against ``bare, DataLoader`` with the same ``num_workers`` (0): what the
engine costs on top of a minimal loop that reads the same data.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch


def _bare_loop(cfg, batches, iters: int, warmup: int) -> float:
    from avadet.engine.solver import action_loss_sum
    from avadet.models import build_model

    torch.manual_seed(0)
    model = build_model(cfg).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.solver.base_lr, momentum=0.9, nesterov=True)
    batch_iter = iter(batches)
    start = 0.0
    for i in range(warmup + iters):
        if i == warmup:
            start = time.perf_counter()
        batch = next(batch_iter)
        out = model(batch.clips, batch.boxes, return_logits=True)
        loss = action_loss_sum(out.logits, batch.labels) / batch.labels.numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return iters * cfg.solver.batch_size / (time.perf_counter() - start)


def _cycle(loader):
    while True:
        yield from loader


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py train", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", help="synthetic preset (tiny, cpu)")
    parser.add_argument("--data", help="an existing synthetic dataset (default: generated in a temp dir)")
    parser.add_argument("--iters", type=int, default=40, help="timed iterations per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    parser.add_argument("--batch", type=int, default=8, help="global batch (clips)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from torch.utils.data import DataLoader

    from avadet.config import load_config
    from avadet.data import collate
    from avadet.engine import build_dataset, train
    from avadet.synthetic import make_synthetic

    with tempfile.TemporaryDirectory(prefix="avadet-bench-train-") as tmp:
        root = Path(args.data) if args.data else make_synthetic(Path(tmp) / "data", preset=args.preset)
        base = [f"solver.batch_size={args.batch}", "train.eval_every_epochs=0",
                "train.checkpoint_every_iters=1000000", "solver.warmup_epochs=0"]
        cfg = load_config(root / "config.yaml", base + ["data.num_workers=0"])
        dataset = build_dataset(cfg, "train")
        total = args.warmup + args.iters
        rows = []

        gen = torch.Generator().manual_seed(0)
        loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True,
                            collate_fn=collate, generator=gen)
        # A few distinct batches, cycled: enough for compute-only timing without holding
        # every batch of the run in memory.
        cached = [b for _, b in zip(range(4), _cycle(loader))]
        rows.append(("bare, in-memory batches", _bare_loop(cfg, _cycle(cached), args.iters, args.warmup)))
        del cached
        reference = _bare_loop(cfg, _cycle(loader), args.iters, args.warmup)
        rows.append(("bare, DataLoader, num_workers 0", reference))

        log_every = args.warmup if args.warmup > 0 else 1
        for workers in (0, 2):
            out = Path(tmp) / f"run{workers}"
            run_cfg = load_config(root / "config.yaml", base + [
                f"data.num_workers={workers}", f"train.output_dir={out}", f"solver.max_iters={total}",
                f"train.log_every_iters={log_every}",
            ])
            train(run_cfg, resume=False)
            metrics = [r for r in csv.DictReader(open(out / "metrics.csv")) if r["kind"] == "train"]
            timed = [r for r in metrics if int(r["iteration"]) > log_every]  # first window = warm-up
            seconds = sum(log_every * args.batch / float(r["samples_per_s"]) for r in timed)
            iters = sum(log_every for _ in timed)
            rows.append((f"avadet train, num_workers {workers}", iters * args.batch / seconds))

    print(f"\npreset {args.preset}, global batch {args.batch}, {args.iters} timed iterations "
          f"after {args.warmup}, {args.threads} threads\n")
    print("| loop | samples/s | ratio vs bare DataLoader loop |")
    print("| --- | --- | --- |")
    for name, speed in rows:
        print(f"| {name} | {speed:.2f} | {speed / reference:.3f} |")
    return 0
