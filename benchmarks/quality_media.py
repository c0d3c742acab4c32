"""Aggregation quality of audio segments and document regions on seeded simulations.

Simulated annotators (good, sloppy and spammers, seeded) label recordings with time
segments and page images with regions and their text (Arabic words); each task gets
``--answers`` annotators at random. The aggregate (``SegmentAggregator`` /
``DocumentAggregator`` fitted on the project, as the server's refit does, and the same
aggregators with every annotator weighed equally) is scored against the truth next to one
annotator drawn at random per task, which is what a project without redundancy delivers.

Metrics: F1 of the segments (regions) matched one to one at temporal IoU (IoU) >= 0.5 with
the same label; the mean IoU of the matched ones; their mean boundary error in seconds
(segments) or character error rate (regions); and the type's answer score against the
truth (IoU-weighted F1; regions: times 1 - CER).

    python benchmarks/quality_media.py             # 300 recordings, 200 pages, 3 answers each
    python benchmarks/quality_media.py --quick     # 100 and 60
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from qistas.quality.boxes import _match  # noqa: E402
from qistas.quality.consensus import _as_box  # noqa: E402
from qistas.quality.documents import DocumentAggregator, cer  # noqa: E402
from qistas.quality.documents import answer_score as region_score  # noqa: E402
from qistas.quality.segments import SegmentAggregator  # noqa: E402
from qistas.quality.segments import answer_score as segment_score  # noqa: E402

SEGMENT_LABELS = ["speech", "music", "noise"]
WORDS = ("بسم", "الله", "الرحمن", "الرحيم", "فاتورة", "رقم", "التاريخ", "المبلغ", "الإجمالي", "شركة", "الدوحة",
         "للتجارة", "العامة", "السيد", "المحترم", "تحية", "طيبة", "وبعد", "نرجو", "التكرم", "بسداد", "قيمة", "البضاعة",
         "المستلمة", "شهر", "مارس", "ريال", "قطري")
LETTERS = sorted({c for w in WORDS for c in w})
# kind: (share of the crowd, boundary jitter, miss rate, spurious rate, label or character error rate)
KINDS = {"good": (0.6, 1.0, 0.05, 0.05, 0.02), "sloppy": (0.3, 4.0, 0.2, 0.2, 0.08), "spammer": (0.1, 0, 0, 0, 0)}


def crowd(rng: random.Random, n: int) -> list[str]:
    kinds = [k for k, (share, *_) in KINDS.items() for _ in range(round(share * n))]
    return (kinds + ["good"] * n)[:n]


# --- segments ----------------------------------------------------------------------------------

def true_segments(rng: random.Random) -> tuple[float, list[dict[str, Any]]]:
    duration = rng.uniform(30, 60)
    cuts = sorted(rng.uniform(0, duration) for _ in range(2 * rng.randint(3, 8)))
    found = [{"start": round(a, 3), "end": round(b, 3), "label": rng.choice(SEGMENT_LABELS)}
             for a, b in zip(cuts[::2], cuts[1::2], strict=True) if b - a > 0.5]
    return duration, found


def noisy_segments(rng: random.Random, kind: str, duration: float, truth: list[dict[str, Any]]) -> dict[str, Any]:
    _, jitter, miss, spurious, wrong = KINDS[kind]
    out = []
    if kind == "spammer":  # random segments, random labels
        for _ in range(rng.randint(1, 6)):
            a = rng.uniform(0, duration - 1)
            out.append({"start": a, "end": min(duration, a + rng.uniform(0.5, 8)), "label": rng.choice(SEGMENT_LABELS)})
    else:
        sigma = 0.15 * jitter  # seconds
        for s in truth:
            if rng.random() < miss:
                continue
            a = max(0.0, s["start"] + rng.gauss(0, sigma))
            b = min(duration, s["end"] + rng.gauss(0, sigma))
            if b - a < 0.1:
                continue
            label = rng.choice(SEGMENT_LABELS) if rng.random() < wrong * 3 else s["label"]
            out.append({"start": a, "end": b, "label": label})
        while rng.random() < spurious:
            a = rng.uniform(0, duration - 1)
            out.append({"start": a, "end": min(duration, a + rng.uniform(0.5, 4)), "label": rng.choice(SEGMENT_LABELS)})
    return {"segments": [{**s, "start": round(s["start"], 3), "end": round(s["end"], 3)} for s in out]}


def as_boxes(segments: list[dict[str, Any]]) -> list[Any]:
    return [_as_box((s["start"], 0.0, s["end"] - s["start"], 1.0, s["label"])) for s in segments]


def segment_metrics(answer: dict[str, Any], truth: list[dict[str, Any]]) -> dict[str, float]:
    got = answer["segments"]
    pairs = _match(as_boxes(got), as_boxes(truth), 0.5)
    f1 = 1.0 if not got and not truth else 2 * len(pairs) / (len(got) + len(truth))
    bounds = [abs(got[i]["start"] - truth[j]["start"]) / 2 + abs(got[i]["end"] - truth[j]["end"]) / 2
              for i, j, _ in pairs]
    return {"f1": f1, "iou": mean(p[2] for p in pairs) if pairs else float("nan"),
            "error": mean(bounds) if bounds else float("nan"), "score": segment_score(answer, {"segments": truth})}


# --- document regions ---------------------------------------------------------------------------

def true_page(rng: random.Random) -> list[dict[str, Any]]:
    lines, y = [], 40.0
    for _ in range(rng.randint(5, 14)):
        h = rng.uniform(24, 40)
        x, w = rng.uniform(40, 120), rng.uniform(300, 640)
        lines.append({"x": x, "y": y, "w": w, "h": h, "label": "line",
                      "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))})
        y += h + rng.uniform(12, 40)
    return lines


def misread(rng: random.Random, text: str, rate: float) -> str:
    out = []
    for c in text:
        r = rng.random()
        if c != " " and r < rate / 2:
            out.append(rng.choice(LETTERS))  # substitution
        elif c != " " and r < rate * 3 / 4:
            continue  # deletion
        else:
            out.append(c)
            if r > 1 - rate / 4:
                out.append(rng.choice(LETTERS))  # insertion
    return "".join(out)


def noisy_page(rng: random.Random, kind: str, truth: list[dict[str, Any]]) -> dict[str, Any]:
    _, jitter, miss, spurious, wrong = KINDS[kind]
    out = []
    if kind == "spammer":
        for _ in range(rng.randint(1, 5)):
            out.append({"x": rng.uniform(0, 500), "y": rng.uniform(0, 800), "w": rng.uniform(50, 300),
                        "h": rng.uniform(20, 60), "label": "line",
                        "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))})
    else:
        sigma = 2.0 * jitter  # pixels
        for r in truth:
            if rng.random() < miss:
                continue
            x1, y1 = r["x"] + rng.gauss(0, sigma), r["y"] + rng.gauss(0, sigma)
            x2, y2 = r["x"] + r["w"] + rng.gauss(0, sigma), r["y"] + r["h"] + rng.gauss(0, sigma)
            out.append({"x": max(0.0, x1), "y": max(0.0, y1), "w": max(3.0, x2 - x1), "h": max(3.0, y2 - y1),
                        "label": "line", "text": misread(rng, r["text"], wrong)})
        while rng.random() < spurious:
            out.append({"x": rng.uniform(0, 500), "y": rng.uniform(0, 800), "w": rng.uniform(50, 200),
                        "h": rng.uniform(20, 40), "label": "line", "text": rng.choice(WORDS)})
    return {"regions": out}


def region_metrics(answer: dict[str, Any], truth: list[dict[str, Any]]) -> dict[str, float]:
    got = answer["regions"]
    pairs = _match([_as_box(r) for r in got], [_as_box(r) for r in truth], 0.5)
    f1 = 1.0 if not got and not truth else 2 * len(pairs) / (len(got) + len(truth))
    errors = [cer(got[i]["text"], truth[j]["text"]) for i, j, _ in pairs]
    return {"f1": f1, "iou": mean(p[2] for p in pairs) if pairs else float("nan"),
            "error": mean(errors) if errors else float("nan"), "score": region_score(answer, {"regions": truth})}


# --- the run ------------------------------------------------------------------------------------

def run(name: str, n_tasks: int, n_answers: int, n_workers: int, seed: int, make_truth: Callable[..., Any],
        make_answer: Callable[..., Any], metrics: Callable[..., dict[str, float]], aggregator: Callable[[], Any],
        context: Callable[[Any], Any]) -> list[tuple[str, dict[str, float], float]]:
    rng = random.Random(seed)
    kinds = crowd(rng, n_workers)
    truths = [make_truth(rng) for _ in range(n_tasks)]
    items, singles = [], []
    for truth in truths:
        workers = rng.sample(range(n_workers), n_answers)
        answers = [(w, make_answer(rng, kinds[w], truth)) for w in workers]
        items.append(answers)
        singles.append(rng.choice(answers)[1])
    contexts = [context(t) for t in truths]
    started = time.perf_counter()
    fitted = aggregator().fit(items, n_workers=n_workers, contexts=contexts)
    fit_seconds = time.perf_counter() - started
    equal = aggregator()
    started = time.perf_counter()
    plain = [equal.aggregate(a, c) for a, c in zip(items, contexts, strict=True)]
    per_task = (time.perf_counter() - started) / n_tasks
    rows = []
    for label, found, seconds in (("one annotator at random", singles, 0.0),
                                  ("aggregate, equal weights", [r.response for r in plain], per_task),
                                  ("aggregate, fitted reliability", [r.response for r in fitted.results_],
                                   fit_seconds)):
        scores = [metrics(a, t) for a, t in zip(found, [strip(t) for t in truths], strict=True)]
        rows.append((label, {k: mean(s[k] for s in scores if s[k] == s[k]) for k in scores[0]}, seconds))
    return rows


def strip(truth: Any) -> Any:
    return truth[1] if isinstance(truth, tuple) else truth


def table(title: str, rows: list[tuple[str, dict[str, float], float]], error: str) -> None:
    print(f"\n{title}\n")
    print(f"| | F1 at IoU 0.5 | mean IoU (matched) | {error} | answer score |")
    print("|---|---:|---:|---:|---:|")
    for label, m, _ in rows:
        print(f"| {label} | {m['f1']:.3f} | {m['iou']:.3f} | {m['error']:.3f} | {m['score']:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--answers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    recordings, pages = (100, 60) if args.quick else (300, 200)
    seg_rows = run("segments", recordings, args.answers, args.workers, args.seed, true_segments,
                   lambda rng, kind, truth: noisy_segments(rng, kind, *truth), segment_metrics,
                   lambda: SegmentAggregator(SEGMENT_LABELS), lambda truth: {"duration": truth[0]})
    table(f"Audio segments: {recordings} recordings of 30-60 s, {args.answers} answers each, {args.workers} "
          "annotators (60% good, 30% sloppy, 10% spammers)", seg_rows, "boundary error (s)")
    doc_rows = run("regions", pages, args.answers, args.workers, args.seed + 1, true_page, noisy_page,
                   region_metrics, lambda: DocumentAggregator(["line"]), lambda truth: None)
    table(f"Document regions: {pages} pages of 5-14 Arabic lines, {args.answers} answers each, {args.workers} "
          "annotators (same mix)", doc_rows, "CER (matched)")
    print(f"\nfit: segments {seg_rows[2][2]:.1f} s, regions {doc_rows[2][2]:.1f} s; one task, equal weights: "
          f"segments {seg_rows[1][2] * 1000:.2f} ms, regions {doc_rows[1][2] * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
