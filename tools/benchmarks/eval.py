"""Frame-mAP at AVA-val scale: avadet's evaluator against the official ActivityNet code.

Usage::

    python tools/benchmark.py eval [--keyframes 57408] [--official PATH] [--workdir DIR]
                                   [--in-memory]

Generates an AVA-val-like workload as CSV files (``--keyframes`` keyframes, ~1.9 gt persons
per keyframe with ~2.7 labels each, and a PySlowFast-style prediction file with one row per
(detected box, class) for all 80 classes: ~14 million rows at full scale), then times, each
in a fresh subprocess and end to end (interpreter start and CSV reading included):

- avadet's ``evaluate_files`` (with a breakdown: interpreter start and imports vs reading and
  evaluating; under a capped protocol it streams the prediction file, 50 rows per keyframe
  kept as it reads);
- with ``--in-memory``, also avadet's whole-table path (``read_predictions`` then
  ``evaluate_frame_map``), interleaved run by run with ``evaluate_files``;
- if ``--official`` points at an activitynet/ActivityNet checkout (or its ``Evaluation``
  folder), the official ``get_ava_performance.py`` on the same files, run unchanged through a
  small Python 3 / NumPy 2 compatibility wrapper. A checkout whose script takes ``-e``
  (exclusions: commit 3fee089, the 2019 challenge code) is compared with avadet's
  ``activitynet2019`` protocol, a newer one with ``activitynet``.

Reports wall time, peak resident memory (``ru_maxrss`` of each subprocess), the mAP of each
and the largest per-class difference, and the speed ratio, as a Markdown table. Scores are
unique within each class so that the official result does not depend on sort stability.
The official code is never copied into this repository.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
KEYFRAMES_PER_VIDEO = 897  # 902..1798
NUM_CLASSES = 80
SCORE_DIGITS = 7

# Run in the official code's subprocess: restores the NumPy aliases NumPy 2 removed and the
# Python 2 implicit relative imports of its `ava` package, then runs the script unchanged.
OFFICIAL_WRAPPER = r"""
import resource, runpy, sys, time
import numpy as np
for name, value in {"float": float, "int": int, "bool": bool, "NAN": np.nan}.items():
    if name not in np.__dict__:
        setattr(np, name, value)
eval_dir = sys.argv[1]
sys.path[:0] = [eval_dir, eval_dir + "/ava"]
sys.argv = [eval_dir + "/get_ava_performance.py"] + sys.argv[2:]
start = time.perf_counter()
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("BENCH_RESULT", time.perf_counter() - start,
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
"""

AVADET_RUNNER = r"""
import json, resource, sys, time
start = time.perf_counter()
from avadet.evaluation import evaluate_files, evaluate_frame_map
from avadet.io import read_annotations, read_exclusions, read_labelmap, read_predictions
gt_path, pred_path, labelmap_path, excl_path, protocol, mode = sys.argv[1:7]
imported = time.perf_counter()
if mode == "files":
    result = evaluate_files(gt_path, pred_path, labelmap_path,
                            excl_path if excl_path != "-" else None, protocol=protocol)
    read_done = imported
else:  # the whole table in memory, then the evaluator
    labelmap = read_labelmap(labelmap_path)
    gt = read_annotations(gt_path, strict=False)
    pred = read_predictions(pred_path)
    exclusions = read_exclusions(excl_path) if excl_path != "-" else None
    read_done = time.perf_counter()
    result = evaluate_frame_map(gt, pred, labelmap, exclusions=exclusions, protocol=protocol)
end = time.perf_counter()
print("BENCH_RESULT " + json.dumps({
    "import_s": imported - start, "read_s": read_done - imported, "evaluate_s": end - read_done,
    "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "map": result.map, "per_class": result.to_json()["per_class"],
    "rows": result.counts["pred_rows"], "evaluated": result.counts["pred_rows_evaluated"],
}), flush=True)
"""


# --------------------------------------------------------------------------- data


def _video_ids(rng: np.random.Generator, count: int) -> list[str]:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
    chars = alphabet[rng.integers(0, len(alphabet), size=(count, 11))]
    return ["".join(row) for row in chars]


def _clip_boxes(boxes: np.ndarray) -> np.ndarray:
    return np.round(np.clip(boxes, 0.0, 1.0), 3)


def _class_prior(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """AVA-like long tail: poses 1-14 (one per person), others 15-80 (Zipf-like)."""
    pose = np.array([0.02, 0.01, 0.0, 0.01, 0.01, 0.0, 0.01, 0.01, 0.01, 0.01, 0.45, 0.35, 0.02, 0.08])
    pose = pose + 0.002
    other = 1.0 / np.arange(1, 67) ** 1.1
    rng.shuffle(other)
    return pose / pose.sum(), other / other.sum()


def generate(workdir: Path, keyframes: int, seed: int) -> dict[str, Path]:
    """Write ``gt.csv``, ``pred.csv``, ``exclusions.csv``, ``labelmap.pbtxt`` under
    ``workdir`` (reused when a previous run made them with the same settings)."""
    from avadet.io import ava_labelmap, write_labelmap

    paths = {name: workdir / f"{name}.{ext}" for name, ext in
             [("gt", "csv"), ("pred", "csv"), ("exclusions", "csv"), ("labelmap", "pbtxt")]}
    manifest = workdir / "manifest.json"
    settings = {"keyframes": keyframes, "seed": seed, "version": 2}
    if manifest.exists() and json.loads(manifest.read_text()).get("settings") == settings:
        if all(p.exists() for p in paths.values()):
            return paths
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_videos = math.ceil(keyframes / KEYFRAMES_PER_VIDEO)
    videos = np.array(_video_ids(rng, n_videos), dtype=object)
    kf = np.arange(keyframes)
    kf_video = kf // KEYFRAMES_PER_VIDEO
    kf_stamp = 902 + kf % KEYFRAMES_PER_VIDEO

    # Ground truth: persons per keyframe, a box each, one pose + ~1.7 other labels.
    persons = rng.choice([1, 2, 3], size=keyframes, p=[0.35, 0.4, 0.25])
    p_kf = np.repeat(kf, persons)
    p_id = np.arange(len(p_kf)) - np.repeat(np.cumsum(persons) - persons, persons)
    n_p = len(p_kf)
    x1 = rng.uniform(0.0, 0.65, n_p)
    y1 = rng.uniform(0.0, 0.35, n_p)
    p_box = _clip_boxes(np.column_stack(
        [x1, y1, x1 + rng.uniform(0.12, 0.35, n_p), y1 + rng.uniform(0.45, 0.65, n_p)]
    ))
    pose_p, other_p = _class_prior(rng)
    n_other = rng.poisson(1.7, n_p)
    lab_person = np.r_[np.arange(n_p), np.repeat(np.arange(n_p), n_other)]
    lab_class = np.r_[rng.choice(14, n_p, p=pose_p) + 1,
                      rng.choice(66, n_other.sum(), p=other_p) + 15]
    pairs = np.unique(np.column_stack([lab_person, lab_class]), axis=0)
    gp, gc = pairs[:, 0], pairs[:, 1]
    gt = pd.DataFrame({
        "video_id": videos[kf_video[p_kf[gp]]],
        "timestamp": pd.Series(kf_stamp[p_kf[gp]]).map("{:04d}".format),
        "x1": p_box[gp, 0], "y1": p_box[gp, 1], "x2": p_box[gp, 2], "y2": p_box[gp, 3],
        "action_id": gc, "person_id": p_id[gp],
    })
    gt.to_csv(paths["gt"], header=False, index=False, float_format="%.3f")

    excluded = rng.choice(keyframes, size=max(1, keyframes // 1000), replace=False)
    pd.DataFrame({"video_id": videos[kf_video[excluded]],
                  "timestamp": pd.Series(kf_stamp[excluded]).map("{:04d}".format)}).to_csv(
        paths["exclusions"], header=False, index=False)
    write_labelmap(paths["labelmap"], ava_labelmap(evaluated_only=True))

    # Detections: most persons found (jittered box), plus ~1.2 false boxes per keyframe.
    found = rng.random(n_p) < 0.95
    jitter = rng.normal(0.0, 0.05, (n_p, 4))
    d_box_true = _clip_boxes(p_box + jitter)[found]
    d_kf_true = p_kf[found]
    d_person = np.flatnonzero(found)
    n_false = rng.poisson(1.2, keyframes)
    f_kf = np.repeat(kf, n_false)
    fx, fy = rng.uniform(0, 0.7, len(f_kf)), rng.uniform(0, 0.4, len(f_kf))
    f_box = _clip_boxes(np.column_stack(
        [fx, fy, fx + rng.uniform(0.1, 0.3, len(f_kf)), fy + rng.uniform(0.3, 0.6, len(f_kf))]
    ))
    d_kf = np.r_[d_kf_true, f_kf]
    d_box = np.r_[d_box_true, f_box]
    d_person = np.r_[d_person, np.full(len(f_kf), -1)]
    order = np.argsort(d_kf, kind="stable")
    d_kf, d_box, d_person = d_kf[order], d_box[order], d_person[order]
    n_det = len(d_kf)

    # Raw scores: low for most classes, high for a detected person's true labels.
    truth = np.zeros((n_det, NUM_CLASSES), dtype=bool)
    det_of_person = np.full(n_p, -1)
    det_of_person[d_person[d_person >= 0]] = np.flatnonzero(d_person >= 0)
    hit = det_of_person[gp] >= 0
    truth[det_of_person[gp[hit]], gc[hit] - 1] = True
    raw = rng.beta(0.8, 6.0, (n_det, NUM_CLASSES))
    raw[truth] = rng.beta(2.0, 3.0, int(truth.sum()))
    # Unique scores within each class, order preserved: the official result is then
    # independent of how its (unstable) sorts break ties.
    scores = np.empty((n_det, NUM_CLASSES), dtype=np.int64)
    for c in range(NUM_CLASSES):  # 80 classes, each vectorised
        values = np.sort(rng.choice(10**SCORE_DIGITS - 1, size=n_det, replace=False) + 1)
        scores[np.argsort(raw[:, c], kind="stable"), c] = values

    # Fixed-width lines, assembled as a byte matrix: "<11-char id>,TTTT,x.xxx,...,NN,0.DDDDDDD".
    prefixes = [
        f"{videos[kf_video[k]]},{kf_stamp[k]:04d},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},"
        .encode() for k, b in zip(d_kf, d_box)
    ]
    width = len(prefixes[0])
    if {len(p) for p in prefixes} != {width}:
        raise RuntimeError("fixed-width prefix expected")
    prefix_bytes = np.frombuffer(b"".join(prefixes), dtype=np.uint8).reshape(n_det, width)
    line = width + 3 + 2 + SCORE_DIGITS + 1  # "NN," "0." digits "\n"
    chunk = 20_000  # detected boxes per write (1.6 million lines)
    tmp = paths["pred"].with_suffix(".tmp")
    with open(tmp, "wb") as handle:
        for start in range(0, n_det, chunk):
            stop = min(n_det, start + chunk)
            rows = (stop - start) * NUM_CLASSES
            out = np.empty((rows, line), dtype=np.uint8)
            out[:, :width] = np.repeat(prefix_bytes[start:stop], NUM_CLASSES, axis=0)
            action = np.tile(np.arange(1, NUM_CLASSES + 1), stop - start)
            out[:, width] = ord("0") + action // 10
            out[:, width + 1] = ord("0") + action % 10
            out[:, width + 2] = ord(",")
            out[:, width + 3] = ord("0")
            out[:, width + 4] = ord(".")
            value = scores[start:stop].reshape(-1)
            powers = 10 ** np.arange(SCORE_DIGITS - 1, -1, -1)
            out[:, width + 5 : width + 5 + SCORE_DIGITS] = ord("0") + (value[:, None] // powers) % 10
            out[:, -1] = ord("\n")
            handle.write(out.tobytes())
    os.replace(tmp, paths["pred"])
    manifest.write_text(json.dumps({
        "settings": settings, "gt_rows": len(gt), "pred_rows": n_det * NUM_CLASSES,
        "detected_boxes": n_det, "persons": n_p, "videos": n_videos,
        "labels_per_person": len(gt) / n_p,
    }, indent=1))
    return paths


# --------------------------------------------------------------------------- runs


def _run(cmd: list[str], cwd: Path, log: Path) -> tuple[float, str]:
    start = time.perf_counter()
    with open(log, "w") as err:
        done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({done.returncode}); see {log}")
    return wall, done.stdout


def run_avadet(paths: dict[str, Path], protocol: str, workdir: Path, exclusions: bool,
               mode: str = "files") -> dict:
    """One fresh-process run: ``mode`` "files" (``evaluate_files``) or "memory" (whole
    table read, then ``evaluate_frame_map``)."""
    env_cmd = [sys.executable, "-c", AVADET_RUNNER, str(paths["gt"]), str(paths["pred"]),
               str(paths["labelmap"]), str(paths["exclusions"]) if exclusions else "-", protocol,
               mode]
    os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    wall, out = _run(env_cmd, REPO, workdir / "avadet.log")
    line = next(s for s in out.splitlines() if s.startswith("BENCH_RESULT "))
    result = json.loads(line[len("BENCH_RESULT "):])
    result["wall_s"] = wall
    result["per_class"] = {int(k): (float("nan") if v is None else v)
                           for k, v in result["per_class"].items()}
    return result


def _official_dir(path: Path) -> Path:
    for candidate in (path, path / "Evaluation"):
        if (candidate / "get_ava_performance.py").exists():
            return candidate
    raise SystemExit(f"no get_ava_performance.py in {path} or {path / 'Evaluation'}")


def run_official(official: Path, paths: dict[str, Path], workdir: Path) -> dict:
    eval_dir = _official_dir(official)
    takes_exclusions = '"-e"' in (eval_dir / "get_ava_performance.py").read_text()
    cmd = [sys.executable, "-c", OFFICIAL_WRAPPER, str(eval_dir), "-l", str(paths["labelmap"]),
           "-g", str(paths["gt"]), "-d", str(paths["pred"])]
    if takes_exclusions:
        cmd += ["-e", str(paths["exclusions"])]
    wall, out = _run(cmd, workdir, workdir / "official.log")
    from avadet.io import read_labelmap

    names = {v: k for k, v in read_labelmap(paths["labelmap"]).names.items()}
    per_class: dict[int, float] = {}
    for name, value in re.findall(
        r"'PascalBoxes_PerformanceByCategory/AP@0\.5IOU/(.*?)':\s*(?:np\.float64\()?([^,)}\s]+)", out
    ):
        per_class[names[name]] = float(value)
    m = re.search(r"'PascalBoxes_Precision/mAP@0\.5IOU':\s*(?:np\.float64\()?([^,)}\s]+)", out)
    bench = re.search(r"BENCH_RESULT (\S+) (\S+)", out)
    return {
        "wall_s": wall, "map": float(m.group(1)) if m else float("nan"),
        "per_class": per_class, "maxrss_kb": int(bench.group(2)) if bench else -1,
        "protocol": "activitynet2019" if takes_exclusions else "activitynet",
        "exclusions": takes_exclusions,
    }


def _median_row(rows: list[str], runs: list[dict], name: str, keyframes: int,
                pred_rows: int) -> dict:
    """Append the Markdown row of the median run (by wall time) of ``runs``; return it."""
    runs = sorted(runs, key=lambda r: r["wall_s"])
    median = runs[len(runs) // 2]
    walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs)
    rss = ", ".join(f"{r['maxrss_kb'] / 1024:.0f}" for r in runs)
    split = f"start+imports {median['import_s']:.1f}, "
    split += (f"read+evaluate {median['evaluate_s']:.1f}" if median["read_s"] == 0 else
              f"read {median['read_s']:.1f}, evaluate {median['evaluate_s']:.1f}")
    rows.append(
        f"| {name} (median of {len(runs)}: {walls} s; RSS {rss} MB) | {keyframes:,} | "
        f"{pred_rows:,} | {median['wall_s']:.1f} ({split}) | "
        f"{median['maxrss_kb'] / 1024:.0f} | {median['map']:.6f} |"
    )
    return median


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py eval", description=__doc__.split("\n")[0])
    parser.add_argument("--keyframes", type=int, default=57408,
                        help="keyframes to generate (AVA v2.2 val: 57408)")
    parser.add_argument("--official", type=Path,
                        help="activitynet/ActivityNet checkout (or its Evaluation folder)")
    parser.add_argument("--workdir", type=Path, help="where the CSVs go (default /tmp/...)")
    parser.add_argument("--protocol", default=None,
                        help="avadet protocol (default: the one matching --official, else "
                        "activitynet2019)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="avadet runs (the median is reported; the official code runs once)")
    parser.add_argument("--in-memory", action="store_true",
                        help="also time avadet's whole-table path (read_predictions + "
                        "evaluate_frame_map), interleaved with evaluate_files")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(f"/tmp/avadet_eval_bench_{args.keyframes}_{args.seed}")

    start = time.perf_counter()
    paths = generate(workdir, args.keyframes, args.seed)
    meta = json.loads((workdir / "manifest.json").read_text())
    print(f"data: {workdir} ({meta['pred_rows']:,} prediction rows, {meta['gt_rows']:,} gt rows, "
          f"{meta['videos']} videos; ready in {time.perf_counter() - start:.1f} s)", flush=True)
    load = os.getloadavg()

    official = None
    protocol = args.protocol or "activitynet2019"
    use_exclusions = True
    if args.official is not None:
        eval_dir = _official_dir(args.official)
        # The latest official code has no exclusions file: compare without one.
        use_exclusions = '"-e"' in (eval_dir / "get_ava_performance.py").read_text()
        protocol = args.protocol or ("activitynet2019" if use_exclusions else "activitynet")
    print(f"avadet ({protocol}{'' if use_exclusions else ', no exclusions'}) x{args.repeat} ...",
          flush=True)
    runs, memory_runs = [], []
    for _ in range(args.repeat):  # A B A B ...: both see the same machine load
        runs.append(run_avadet(paths, protocol, workdir, use_exclusions, "files"))
        if args.in_memory:
            memory_runs.append(run_avadet(paths, protocol, workdir, use_exclusions, "memory"))
    if args.official is not None:
        print(f"official ({args.official}) ...", flush=True)
        official = run_official(args.official, paths, workdir)
    load_after = os.getloadavg()

    rows = [
        "| evaluator | keyframes | prediction rows | wall time (s) | peak RSS (MB) | mAP |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    ours = _median_row(rows, runs, f"avadet `{protocol}` evaluate_files", args.keyframes,
                       meta["pred_rows"])
    if memory_runs:
        _median_row(rows, memory_runs, f"avadet `{protocol}` read_predictions + "
                    "evaluate_frame_map", args.keyframes, meta["pred_rows"])
    if official is not None:
        rows.append(
            f"| official ActivityNet ({official['protocol']} code) | {args.keyframes:,} | "
            f"{meta['pred_rows']:,} | {official['wall_s']:.1f} | "
            f"{official['maxrss_kb'] / 1024:.0f} | {official['map']:.6f} |"
        )
    print()
    print("\n".join(rows))
    print()
    if official is not None:
        diffs = [abs(ours["per_class"][k] - v) for k, v in official["per_class"].items()
                 if not (math.isnan(v) and math.isnan(ours["per_class"].get(k, math.nan)))]
        slowest = max(r["wall_s"] for r in runs)
        peak = max(r["maxrss_kb"] for r in runs)
        print(f"speed-up: {official['wall_s'] / ours['wall_s']:.1f}x "
              f"({official['wall_s'] / slowest:.1f}x against the slowest run); "
              f"peak RSS avadet / official: {peak / 1024:.0f} / "
              f"{official['maxrss_kb'] / 1024:.0f} MB (largest of avadet's runs); "
              f"|mAP difference| {abs(ours['map'] - official['map']):.2e}; "
              f"largest per-class |AP difference| {max(diffs, default=float('nan')):.2e} over "
              f"{len(official['per_class'])} classes")
    if memory_runs:
        same = all(json.dumps([r["map"], r["per_class"]]) == json.dumps([ours["map"], ours["per_class"]])
                   for r in memory_runs + runs)
        print(f"evaluate_files and the whole-table path: "
              f"{'identical mAP and per-class APs' if same else 'DIFFERENT results'}")
    print(f"load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load)}; "
          f"after: {', '.join(f'{v:.2f}' for v in load_after)} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
