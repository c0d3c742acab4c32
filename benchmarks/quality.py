"""Accuracy and speed of qistas.quality, side by side with crowd-kit when it is installed.

    python benchmarks/quality.py            # 7 real datasets + the synthetic 1M-answer set
    python benchmarks/quality.py --quick    # real datasets only

Real datasets: item,worker,label CSVs with gold (see the datasets README); accuracy is
measured on gold items. Repeated (worker, item) pairs are kept as separate answers, as in
the source files, for both libraries. The synthetic set (200k tasks, 2,000 workers,
4 classes, 5 answers per task: good, mediocre, spammer and adversarial workers) runs
every method in a fresh subprocess to measure its peak memory.

crowd-kit is not a dependency of Qistas: install it in a separate environment to compare
(see docs/benchmarks-quality.md). Without it only qistas.quality is measured.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
try:
    import qistas.quality as q
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, str(ROOT / "src"))
    import qistas.quality as q

# crowd-kit is imported only where it is used: a child process measuring qistas alone
# must not carry pandas and crowd-kit in its memory
HAVE_CROWDKIT = importlib.util.find_spec("crowdkit") is not None

DATASETS = ["rte", "temp", "sentiment", "web", "music", "adult", "relevance"]
OURS = {
    "MajorityVote": lambda: q.MajorityVote(),
    "WeightedMajorityVote": lambda: q.WeightedMajorityVote(),
    "DawidSkene": lambda: q.DawidSkene(),
    "OneCoinDawidSkene": lambda: q.OneCoinDawidSkene(),
    "GLAD": lambda: q.GLAD(),
    "MACE": lambda: q.MACE(),
    "AutoClassifier": lambda: q.AutoClassifier(),
}
CK_METHODS = [
    "MajorityVote",
    "Wawa",
    "ZeroBasedSkill",
    "DawidSkene",
    "OneCoinDawidSkene",
    "GLAD",
    "MACE",
]
LAST_CPU = [0.0]  # CPU seconds of the last fit (robust when the machine is shared)
SYN = {"n_tasks": 200_000, "n_workers": 2_000, "n_labels": 4, "answers_per_task": 5}


def find_data_dir(given: str | None) -> Path:
    candidates = [given, os.environ.get("QISTAS_CROWD_DATA")]
    candidates += [str(p / "shared" / "datasets" / "crowd") for p in ROOT.parents[:2]]
    for c in candidates:
        if c and (Path(c) / "rte" / "labels.csv").exists():
            return Path(c)
    raise SystemExit("crowd datasets not found: pass --data-dir or set QISTAS_CROWD_DATA")


def load(data_dir: Path, name: str) -> dict:
    """Encode string ids as indices; labels sorted (numerically when they are numbers)."""
    with open(data_dir / name / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    with open(data_dir / name / "gold.csv", newline="") as f:
        gold_rows = list(csv.reader(f))[1:]
    items: dict[str, int] = {}
    workers: dict[str, int] = {}
    values = sorted({r[2] for r in rows}, key=lambda v: (len(v), v))
    vmap = {v: i for i, v in enumerate(values)}
    t = np.array([items.setdefault(r[0], len(items)) for r in rows])
    w = np.array([workers.setdefault(r[1], len(workers)) for r in rows])
    lab = np.array([vmap[r[2]] for r in rows])
    gold = np.full(len(items), -1)
    for it, v in gold_rows:
        if it in items and v in vmap:
            gold[items[it]] = vmap[v]
    pairs = t * (len(workers) + 1) + w
    return {
        "tasks": t,
        "workers": w,
        "labels": lab,
        "n_labels": len(values),
        "gold": gold,
        "repeated": int(pairs.size - np.unique(pairs).size),
    }


def fit_ours(name: str, d: dict, n_labels: int) -> tuple[np.ndarray, float, str]:
    est = OURS[name]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", q.ConvergenceWarning)
        start, cpu = time.perf_counter(), time.process_time()
        est.fit(d["tasks"], d["workers"], d["labels"], n_labels=n_labels)
        seconds = time.perf_counter() - start
    LAST_CPU[0] = time.process_time() - cpu
    note = ""
    if hasattr(est, "n_iter_"):
        note = f"{est.n_iter_} it" + ("" if est.converged_ else ", not converged")
    del caught
    return est.labels_, seconds, note


def make_crowdkit(name: str, n_iter: int | None = None):  # noqa: ANN201
    from crowdkit import aggregation as ck

    cls = getattr(ck, name)
    if name == "GLAD" and n_iter is not None:
        return cls(n_iter=n_iter)
    return cls()


def fit_crowdkit(name: str, d: dict, n_iter: int | None = None) -> tuple[np.ndarray, float]:
    import pandas as pd

    df = pd.DataFrame({"task": d["tasks"], "worker": d["workers"], "label": d["labels"]})
    model = make_crowdkit(name, n_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, cpu = time.perf_counter(), time.process_time()
        pred = model.fit_predict(df)
        seconds = time.perf_counter() - start
    LAST_CPU[0] = time.process_time() - cpu
    n_tasks = int(d["tasks"].max()) + 1
    out = pred.reindex(range(n_tasks)).fillna(-1).to_numpy().astype(np.int64)
    return out, seconds


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    known = gold >= 0
    return float(np.mean(pred[known] == gold[known]))


def run_real(data_dir: Path, names: list[str], crowdkit: bool) -> dict:
    results: dict = {}
    for name in names:
        d = load(data_dir, name)
        k = d["n_labels"]
        print(
            f"\n## {name}: {d['tasks'].max() + 1} items, {d['workers'].max() + 1} workers, "
            f"{d['tasks'].size} answers, {k} classes, {int((d['gold'] >= 0).sum())} gold, "
            f"{d['repeated']} repeated (worker, item) answers kept"
        )
        head = f"{'qistas acc':>10s} {'fit s':>8s}  {'crowd-kit acc':>13s} {'fit s':>8s}"
        print(f"{'method':22s} {head}")
        res: dict = {"ours": {}, "crowdkit": {}}
        for m in sorted(set(OURS) | (set(CK_METHODS) if crowdkit else set()), key=_order):
            ours = ck = "", ""
            if m in OURS:
                pred, sec, note = fit_ours(m, d, k)
                acc = accuracy(pred, d["gold"])
                res["ours"][m] = {"acc": acc, "seconds": sec, "note": note}
                ours = f"{acc:10.3f}", f"{sec:8.3f}"
            if crowdkit and m in CK_METHODS:
                pred, sec = fit_crowdkit(m, d)
                acc = accuracy(pred, d["gold"])
                res["crowdkit"][m] = {"acc": acc, "seconds": sec}
                ck = f"{acc:13.3f}", f"{sec:8.2f}"
            flag = " (default)" if m == q.DEFAULT_CLASSIFIER else ""
            print(f"{m + flag:22s} {ours[0] or '-':>10s} {ours[1] or '-':>8s}  "
                  f"{ck[0] or '-':>13s} {ck[1] or '-':>8s}")
        results[name] = res
    return results


def _order(m: str) -> int:
    order = ["MajorityVote", "WeightedMajorityVote", "Wawa", "ZeroBasedSkill", "DawidSkene",
             "OneCoinDawidSkene", "GLAD", "MACE", "AutoClassifier"]
    return order.index(m) if m in order else len(order)


def summarise(results: dict, crowdkit: bool) -> None:
    default = q.DEFAULT_CLASSIFIER
    print(f"\n## Summary: qistas default ({default}) against crowd-kit")
    ours_mean = np.mean([r["ours"][default]["acc"] for r in results.values()])
    if not crowdkit:
        print(f"mean accuracy of the default over {len(results)} datasets: {ours_mean:.4f}")
        return
    print(f"{'dataset':10s} {'default':>8s} {'ck best':>8s} {'ck method':>18s} {'gap':>7s}"
          f" {'ck DS':>7s}")
    for name, r in results.items():
        best = max(r["crowdkit"], key=lambda m: r["crowdkit"][m]["acc"])
        b = r["crowdkit"][best]["acc"]
        a = r["ours"][default]["acc"]
        ds = r["crowdkit"]["DawidSkene"]["acc"]
        print(f"{name:10s} {a:8.3f} {b:8.3f} {best:>18s} {100 * (a - b):+6.1f}p {ds:7.3f}")
    ck_ds = np.mean([r["crowdkit"]["DawidSkene"]["acc"] for r in results.values()])
    print(f"mean accuracy: qistas {default} {ours_mean:.4f}, crowd-kit DawidSkene {ck_ds:.4f}")


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    VmHWM is reset by exec; ``ru_maxrss`` is not on Linux (a child would report the
    benchmark parent's size), so it is only the fallback.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(spec: str, npz: str, ck_glad_iter: int, trace: bool) -> None:
    """Child process: fit one method on the synthetic set, print one JSON line.

    With ``trace`` the fit runs under tracemalloc (numpy and pandas report their buffers
    to it) and the traced peak is reported; its time is not (tracing slows Python code).
    """
    lib, method = spec.split(":")
    z = np.load(npz)
    d = {k: z[k] for k in ("tasks", "workers", "labels")}
    truth = z["truth"]
    if lib == "crowdkit":
        import pandas as pd  # noqa: F401  (imported before any measurement starts)
        from crowdkit import aggregation  # noqa: F401
    if trace:
        tracemalloc.start()
    if lib == "ours":
        pred, sec, note = fit_ours(method, d, SYN["n_labels"])
    else:
        pred, sec = fit_crowdkit(method, d, ck_glad_iter if method == "GLAD" else None)
        note = f"n_iter={ck_glad_iter}" if method == "GLAD" else ""
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    print(json.dumps({
        "acc": float(np.mean(pred == truth)), "seconds": sec, "cpu_seconds": LAST_CPU[0],
        "note": note,
        "peak_rss_mb": peak_rss_mb(), "traced_peak_mb": traced,
    }))


def _child(lib: str, m: str, npz: str, ck_glad_iter: int, trace: bool) -> dict | None:
    cmd = [sys.executable, __file__, "--run-one", f"{lib}:{m}", "--npz", npz,
           "--ck-glad-iter", str(ck_glad_iter)] + (["--trace"] if trace else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"{lib}:{m} failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_synthetic(crowdkit: bool, ck_glad_iter: int) -> dict:
    sim = q.simulate_classification(**SYN, random_state=2024)
    print(f"\n## Synthetic: {SYN['n_tasks']} tasks, {SYN['n_workers']} workers, "
          f"{sim.tasks.size} answers, {SYN['n_labels']} classes (seed 2024); worker kinds "
          f"good/mediocre/spammer/adversarial = {np.bincount(sim.kinds, minlength=4).tolist()}")
    print("each method in fresh processes: one timed (fit wall and CPU seconds, peak RSS of "
          "the whole\nprocess), one under tracemalloc (peak traced memory of the fit alone; "
          "only for fits under 30 s)")
    print(f"{'method':30s} {'acc':>6s} {'fit s':>8s} {'cpu s':>8s} {'RSS MB':>8s} "
          f"{'fit MB':>8s}  note")
    results: dict = {"ours": {}, "crowdkit": {}}
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "syn.npz")
        np.savez(npz, tasks=sim.tasks, workers=sim.workers, labels=sim.labels, truth=sim.truth)
        jobs = [("ours", m) for m in OURS]
        if crowdkit:
            jobs += [("crowdkit", m) for m in CK_METHODS]
        for lib, m in jobs:
            r = _child(lib, m, npz, ck_glad_iter, trace=False)
            if r is None:
                continue
            if r["seconds"] < 30:  # tracing slows pandas code many times over
                traced = _child(lib, m, npz, ck_glad_iter, trace=True)
                r["traced_peak_mb"] = traced["traced_peak_mb"] if traced else None
            results[lib][m] = r
            label = ("qistas " if lib == "ours" else "crowd-kit ") + m
            fit_mb = "-" if r["traced_peak_mb"] is None else f"{r['traced_peak_mb']:.0f}"
            print(f"{label:30s} {r['acc']:6.3f} {r['seconds']:8.2f} {r['cpu_seconds']:8.2f} "
                  f"{r['peak_rss_mb']:8.0f} {fit_mb:>8s}  {r['note']}")
    if crowdkit:
        print("\nspeed-up (crowd-kit fit time / qistas fit time) and memory:")
        for m in ("DawidSkene", "OneCoinDawidSkene", "GLAD", "MACE", "MajorityVote"):
            a, b = results["ours"].get(m), results["crowdkit"].get(m)
            if a and b:
                extra = ""
                if m == "GLAD":
                    extra = f" (crowd-kit limited to {ck_glad_iter} iteration(s))"
                mem = f"process peak {a['peak_rss_mb']:.0f} MB vs {b['peak_rss_mb']:.0f} MB"
                if a.get("traced_peak_mb") and b.get("traced_peak_mb"):
                    mem += f", fit {a['traced_peak_mb']:.0f} MB vs {b['traced_peak_mb']:.0f} MB"
                wall = b["seconds"] / a["seconds"]
                cpu = b["cpu_seconds"] / a["cpu_seconds"]
                print(f"  {m:20s} {wall:6.1f}x (wall) {cpu:6.1f}x (CPU) faster; {mem}{extra}")
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="skip the synthetic 1M-answer set")
    p.add_argument("--synthetic-only", action="store_true", help="skip the real datasets")
    p.add_argument("--data-dir", help="folder holding rte/, temp/, ... (item,worker,label CSVs)")
    p.add_argument("--datasets", nargs="*", default=DATASETS)
    p.add_argument("--no-crowdkit", action="store_true", help="measure qistas.quality only")
    p.add_argument("--ck-glad-iter", type=int, default=1,
                   help="iterations for crowd-kit GLAD on the synthetic set (minutes each)")
    p.add_argument("--json", help="also write all figures to this file")
    p.add_argument("--run-one", help=argparse.SUPPRESS)
    p.add_argument("--npz", help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run_one:
        run_one(args.run_one, args.npz, args.ck_glad_iter, args.trace)
        return
    crowdkit = HAVE_CROWDKIT and not args.no_crowdkit
    print(f"# qistas.quality benchmark  python {platform.python_version()}, numpy "
          f"{np.__version__}, {os.cpu_count()} cores")
    if crowdkit:
        import crowdkit as _ck

        print(f"crowd-kit {getattr(_ck, '__version__', '?')}: compared side by side")
    else:
        print("crowd-kit is not importable here: measuring qistas.quality only")
    print("repeated (worker, item) answers: kept as separate answers (no dedupe), both libraries")
    out: dict = {}
    if not args.synthetic_only:
        out["real"] = run_real(find_data_dir(args.data_dir), args.datasets, crowdkit)
        summarise(out["real"], crowdkit)
    if not args.quick:
        out["synthetic"] = run_synthetic(crowdkit, args.ck_glad_iter)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
