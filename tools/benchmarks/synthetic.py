"""The paper's central claim on the synthetic benchmark: SlowFast vs Slow-only.

Trains SlowFast and the Slow-only baseline with the same Slow pathway (4 frames, tau = 10)
and the same budget (epochs, batch, schedule) on a synthetic AVA-format dataset in which some
actions exist only as fast periodic motion (``docs/synthetic_dataset.md``), for several
training seeds, and tests every model on the validation split with the detector-noise person
boxes. Reports frame-mAP overall and per class group (fast motion, slow motion, appearance),
mean and spread over the seeds, the convolution cost of each model and the Fast pathway's
share of SlowFast's cost. Optionally: wider Fast pathways (beta) and the other two lateral
transforms.

Usage::

    python tools/benchmark.py synthetic [--preset cpu] [--data DIR] [--seeds 0 1 2]
        [--out DIR] [--models slow slowfast ...] [--markdown FILE]

Runs that finished are reused (``--out`` keeps every run's folder; a run is redone only if
its ``result.json`` is missing), so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from avadet.api.demo_analysis import CLASS_GROUPS  # noqa: E402


def model_variants(root: Path) -> dict[str, tuple[str, Path, list[str]]]:
    """key -> (table name, config, overrides). Every SlowFast variant keeps the Slow pathway
    of ``slow`` (4 frames, tau = 10, the same width), so differences come from the Fast
    pathway and the laterals; ``fast`` is the Fast pathway alone."""
    slowfast = root / "config.yaml"
    return {
        "slow": ("Slow-only 4x10", root / "config_slow.yaml", []),
        "slowfast": ("SlowFast 16x2, alpha 4, beta 1/8", slowfast, []),
        "fast": ("Fast-only 16x2, beta 1/8", slowfast, ["model.arch=fast"]),
        "slowfast_beta4": ("SlowFast, beta 1/4", slowfast, ["model.beta_inv=4"]),
        "slowfast_beta2": ("SlowFast, beta 1/2", slowfast, ["model.beta_inv=2"]),
        "slowfast_sample": ("SlowFast, lateral time-strided sampling", slowfast, ["model.lateral=sample"]),
        "slowfast_ttoc": ("SlowFast, lateral time-to-channel", slowfast, ["model.lateral=ttoc"]),
        # alpha with the same Slow pathway (4 frames, tau = 10): the Fast stride is tau / alpha
        # and the Slow frames are every alpha-th Fast frame (linspace would move them).
        "slowfast_alpha2": ("SlowFast, alpha 2 (Fast 8x5)", slowfast,
                            ["model.alpha=2", "data.num_frames=8", "data.sampling_rate=5",
                             "model.slow_frames=stride"]),
        "slowfast_alpha10": ("SlowFast, alpha 10 (Fast 40x1)", slowfast,
                             ["model.alpha=10", "data.num_frames=40", "data.sampling_rate=1",
                              "model.slow_frames=stride"]),
    }


def run_one(
    name: str, config: Path, overrides: list[str], out_dir: Path, groups: dict[str, list[int]]
) -> dict[str, Any]:
    """Train and test one model; the result is cached in ``out_dir/result.json``."""
    from avadet.api.demo_analysis import group_mean_ap
    from avadet.config import load_config
    from avadet.engine import clip_cost_of, test, train

    cached = out_dir / "result.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    cfg = load_config(config, [*overrides, f"train.output_dir={out_dir}"])
    started = time.perf_counter()
    trained = train(cfg)
    train_s = time.perf_counter() - started
    tested = test(cfg, trained.final_checkpoint, output_csv=out_dir / "predictions.csv")
    result = tested.eval_result
    per_class = {int(k): float(v) for k, v in result.per_class.items()}
    record = {
        "name": name,
        "arch": cfg.model.arch,
        "overrides": overrides,
        "train_seconds": train_s,
        "per_class": {str(k): v for k, v in per_class.items()},
        "seed": cfg.train.seed,
        "map": group_mean_ap(per_class, groups),
        "fast_stem": fast_stem_trace(out_dir),
        **clip_cost_of(cfg),
    }
    from avadet.io import atomic_write

    with atomic_write(cached) as f:
        json.dump(record, f, indent=1)
    return record


def fast_stem_trace(out_dir: Path) -> Optional[dict[str, float]]:
    """How the Fast stem's filters moved in a finished run, from its per-epoch checkpoints:
    their norm after the first epoch and at the end, the cosine between those two directions
    (1.0: frozen after epoch 1), and the share of the final filters' energy that varies over
    time (a filter that only sums frames is blind to motion; a random one has 0.8). None when
    the run has no Fast pathway or no checkpoints."""
    import torch

    paths = sorted((out_dir / "checkpoints").glob("checkpoint_iter_*.pt"))
    if len(paths) < 2:
        return None

    def stem(path: Path):
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        w = state.get("backbone.fast_stem.conv.weight")
        return None if w is None else w.double()

    first, last = stem(paths[0]), stem(paths[-1])
    if first is None:
        return None
    cos = float((first.flatten() @ last.flatten()) / (first.norm() * last.norm()))
    varying = last - last.mean(dim=2, keepdim=True)  # (C_out, 3, T, 7, 7): T is dim 2
    return {
        "norm_epoch1": float(first.norm()),
        "norm_end": float(last.norm()),
        "cos_epoch1_end": cos,
        "temporal_energy_end": float((varying ** 2).sum() / (last ** 2).sum()),
    }


def stem_table(runs: dict[str, list[dict]]) -> str:
    rows = [(name, r) for name, records in runs.items() for r in records if r.get("fast_stem")]
    if not rows:
        return ""
    lines = ["| model | seed | Fast stem norm, epoch 1 -> end | cos(epoch 1, end) "
             "| time-varying energy at end | fast-motion AP |", "| --- | ---: | --- | ---: | ---: | ---: |"]
    for name, r in rows:
        t = r["fast_stem"]
        lines.append(f"| {name} | {r.get('seed', '?')} | {t['norm_epoch1']:.2f} -> {t['norm_end']:.2f} "
                     f"| {t['cos_epoch1_end']:.3f} | {t['temporal_energy_end']:.2f} "
                     f"| {r['map']['fast_motion']:.3f} |")
    return "\n".join(lines)


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v == v]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: dict[str, list[dict]]) -> str:
    """A Markdown table: per model, mAP (mean ± std over seeds) per group, cost, train time."""
    lines = [
        "| model | seeds | mAP all | fast-motion classes | slow-motion classes | appearance classes "
        "| GFLOPs/clip | Fast share | train s/run |",
        "| --- | ---: | --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for name, records in runs.items():
        cells = []
        for group in CLASS_GROUPS:
            mean, std = _mean_std([r["map"][group] for r in records])
            cells.append(f"{mean:.3f} ± {std:.3f}")
        first = records[0]
        share = f"{first['fast_share']:.1%}" if "fast_share" in first else "-"
        seconds = statistics.fmean(r["train_seconds"] for r in records)
        lines.append(
            f"| {name} | {len(records)} | {' | '.join(cells)} | {first['gflops']:.3f} | {share} "
            f"| {seconds:.0f} |"
        )
    return "\n".join(lines)


def claim_check(runs: dict[str, list[dict]], slowfast: str, slow: str) -> str:
    """The paper's claim on this benchmark, checked seed by seed: SlowFast beats Slow-only on
    the fast-motion classes in every seed, by a mean margin larger than twice the larger of
    the two models' standard deviations, and is not worse on the appearance classes."""
    if slowfast not in runs or slow not in runs:
        return ""
    pairs = [(a, b) for a in runs[slowfast] for b in runs[slow] if a["seed"] == b["seed"]]
    if len(pairs) < 2:
        return ""
    margins = [a["map"]["fast_motion"] - b["map"]["fast_motion"] for a, b in pairs]
    _, sd_a = _mean_std([a["map"]["fast_motion"] for a, _ in pairs])
    _, sd_b = _mean_std([b["map"]["fast_motion"] for _, b in pairs])
    look_a, _ = _mean_std([a["map"]["appearance"] for a, _ in pairs])
    look_b, _ = _mean_std([b["map"]["appearance"] for _, b in pairs])
    mean = statistics.fmean(margins)
    every = all(m > 0 for m in margins)
    twice = mean > 2 * max(sd_a, sd_b)
    return (
        f"Claim check over {len(pairs)} seeds: fast-motion margin per seed "
        f"{', '.join(f'{m:+.3f}' for m in margins)}; SlowFast ahead in every seed: "
        f"{'yes' if every else 'no'}; mean margin {mean:+.3f} vs 2 x larger std "
        f"{2 * max(sd_a, sd_b):.3f}: {'yes' if twice else 'no'}; appearance {look_a:.3f} vs "
        f"{look_b:.3f}: {'not worse' if look_a >= look_b else 'worse'}."
    )


def per_seed_table(runs: dict[str, list[dict]], seeds: list[int]) -> str:
    lines = ["| model | " + " | ".join(f"seed {s}: all / fast" for s in seeds) + " |"]
    lines.append("| --- |" + " --- |" * len(seeds))
    for name, records in runs.items():
        cells = [f"{r['map']['all']:.3f} / {r['map']['fast_motion']:.3f}" for r in records]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_table(runs: dict[str, list[dict]], meta: dict) -> str:
    names = {int(c["id"]): c["name"] for c in meta["classes"]} if "classes" in meta else {}
    ids = sorted({int(k) for recs in runs.values() for r in recs for k in r["per_class"]})
    lines = ["| model | " + " | ".join(f"{c} {names.get(c, '')}".strip() for c in ids) + " |"]
    lines.append("| --- |" + " ---: |" * len(ids))
    for name, records in runs.items():
        cells = []
        for c in ids:
            mean, std = _mean_std([r["per_class"].get(str(c), float("nan")) for r in records])
            cells.append(f"{mean:.2f}±{std:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu", help="synthetic preset (default cpu)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder (made with the preset and --data-seed if absent)")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--out", type=Path, default=Path("output/synthetic_benchmark"))
    parser.add_argument("--models", nargs="+", default=["slow", "slowfast"],
                        help="which models (default: slow slowfast); also fast, slowfast_beta4, "
                             "slowfast_beta2, slowfast_sample, slowfast_ttoc, slowfast_alpha2, "
                             "slowfast_alpha10. Runs of several "
                             "invocations with the same --out are shared (each is cached)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for every run, e.g. solver.max_epoch=6")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)

    from avadet.api.demo_analysis import class_groups
    from avadet.synthetic import load_meta, make_synthetic

    data = args.data or args.out / f"data_{args.preset}_seed{args.data_seed}"
    root = make_synthetic(data, preset=args.preset, seed=args.data_seed)
    meta = load_meta(root)
    groups = class_groups(meta)

    available = model_variants(root)
    unknown = sorted(set(args.models) - set(available))
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {sorted(available)}")
    runs: dict[str, list[dict]] = {}
    for key in args.models:
        name, config, extra = available[key]
        runs[name] = []
        for seed in args.seeds:
            out_dir = args.out / f"{key}_seed{seed}"
            print(f"== {name}, seed {seed} -> {out_dir}", flush=True)
            record = run_one(
                name, config, [*args.overrides, *extra, f"train.seed={seed}"], out_dir, groups
            )
            record.setdefault("seed", seed)
            if "fast_stem" not in record:  # also for runs cached before it was recorded
                record["fast_stem"] = fast_stem_trace(out_dir)
            print(f"   mAP {record['map']['all']:.3f}, fast-motion {record['map']['fast_motion']:.3f} "
                  f"({record['train_seconds']:.0f} s training)", flush=True)
            runs[name].append(record)

    text = "\n\n".join(part for part in [
        f"Dataset: preset `{args.preset}`, data seed {args.data_seed}; training seeds {args.seeds}; "
        f"overrides {args.overrides or 'none'}. Groups: fast motion {groups['fast_motion']}, slow "
        f"motion {groups['slow_motion']}, appearance {groups['appearance']}.",
        summarise(runs),
        claim_check(runs, model_variants(root)["slowfast"][0], model_variants(root)["slow"][0]),
        per_seed_table(runs, args.seeds),
        per_class_table(runs, meta),
        stem_table(runs),
    ] if part)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
