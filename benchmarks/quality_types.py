"""Trusted answers for every task type, measured through the platform's own path.

Real crowd sets (``../shared/datasets/crowd-types/``: spans, boxes, pairwise, ratings,
text): a fresh ``qistas serve`` on SQLite, a project per set with the type's spec, the items
imported as tasks, every crowd answer imported with ``POST /projects/{id}/annotations`` (the
outside workers become pseudonymous annotators), a refit (``POST /quality/refit``), then the
results read back from the JSONL export and scored against the set's truth, next to the
reference scores of the datasets' README (crowd-kit 1.4.2 and simple methods).

Simulated annotators (seeded; good, noisy and spammers) do the same for the types without a
real set (ranking, multi-label) and for adaptive redundancy: how many answers a project with
``redundancy {min 2, max 5, target}`` needs to match the quality of a fixed five, with the
annotators taking and submitting tasks through the API as people would.

Also timed: deciding one task of five answers, per type (the cost after each answer).

    python benchmarks/quality_types.py              # everything (several minutes)
    python benchmarks/quality_types.py --quick      # smaller simulations, real sets subsampled
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from annotate_loop import api, check, serve  # noqa: E402

from qistas.domain.quality import MIN_ANSWERS_TO_FIT, REFIT_GROWTH  # noqa: E402
from qistas.quality.ranking import RankingAggregator  # noqa: E402

DATA = HERE.parents[1] / "shared" / "datasets" / "crowd-types"

# The README's best reference per set: (metric name, value, higher is better).
REFERENCES = {
    "conll2003-mturk": ("exact-span F1", 0.715, True, "DawidSkene per token over BIO; exact-span majority 0.567"),
    "otb-init-boxes": ("mean IoU", 0.772, True, "SegmentationEM; IoU-cluster median 0.768"),
    "urbano-music-sim": ("accuracy a/b/tie", 0.701, True, "BradleyTerry; DawidSkene 0.669; majority 0.580"),
    "snow-affect": ("MAE", 12.02, False, "mean; worker-offset mean 12.87"),
    "crowdspeech-dev-clean": ("WER %", 6.63, False, "ROVER; medoid 6.70"),
}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


# --- the platform's path --------------------------------------------------------------------


class Platform:
    """One server, one organization: projects fed with tasks and outside answers."""

    def __init__(self, server: Any) -> None:
        self.server = server
        with closing(api(server)) as admin:
            check(admin.post("/orgs", json={"name": "Quality", "slug": "quality"}))
            owner = check(admin.post("/users", json={"email": "owner@quality.test", "role": "owner",
                                                     "org": "quality"}))
            self.token = check(admin.post(f"/users/{owner['id']}/tokens"))["token"]
        self.owner = api(server, self.token)
        self.annotators: list[httpx.Client] = []

    def project(self, task: dict[str, Any], redundancy: dict[str, Any]) -> int:
        return int(check(self.owner.post("/projects", json={"name": task["type"], "task": task,
                                                             "redundancy": redundancy}))["id"])

    def upload(self, path: str, rows: list[dict[str, Any]]) -> Any:
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        return check(self.owner.post(path, content=body, headers={"Content-Type": "application/x-ndjson"}))

    def load(self, task: dict[str, Any], items: list[dict[str, Any]], answers: list[dict[str, Any]],
             data: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[int, float]:
        """Tasks, then every answer; a refit. Returns the project and the seconds it all took."""
        start = time.perf_counter()
        pid = self.project(task, {"min": 1, "max": 1})
        self.upload(f"/projects/{pid}/tasks", [{"unique_id": i["item"], "data": data(i["data"])} for i in items])
        answers = sorted(answers, key=lambda a: a["item"])
        self.upload(f"/projects/{pid}/annotations",
                    [{"task": a["item"], "annotator": a["worker"], "answer": a["answer"]} for a in answers])
        check(self.owner.post(f"/projects/{pid}/quality/refit"), 200)
        return pid, time.perf_counter() - start

    def results(self, pid: int) -> dict[str, dict[str, Any]]:
        """unique_id -> the exported record (response, confidence, details)."""
        text = self.owner.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return {r["unique_id"]: r for r in records if r["status"] == "completed"}

    def annotator(self, n: int) -> httpx.Client:
        while len(self.annotators) <= n:
            with closing(api(self.server)) as admin:
                user = check(admin.post("/users", json={"email": f"sim{len(self.annotators)}@crowd.test",
                                                        "role": "annotator"}))
                token = check(admin.post(f"/users/{user['id']}/tokens"))["token"]
            self.annotators.append(api(self.server, token))
        return self.annotators[n]


# --- metrics --------------------------------------------------------------------------------


def span_f1(predicted: dict[str, Any], truth: dict[str, Any]) -> tuple[int, int, int]:
    p = {(s["start"], s["end"], s["label"]) for s in predicted.get("spans", [])}
    t = {(s["start"], s["end"], s["label"]) for s in truth["spans"]}
    return len(p & t), len(p), len(t)


def iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    x1, y1 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x2, y2 = min(a["x"] + a["w"], b["x"] + b["w"]), min(a["y"] + a["h"], b["y"] + b["h"])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union > 0 else 0.0


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[^\w\s']|_", " ", text).split()


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


# --- the real sets --------------------------------------------------------------------------


def real_set(platform: Platform, name: str, quick: bool) -> dict[str, Any]:
    folder = DATA / name
    items, answers = read_jsonl(folder / "items.jsonl"), read_jsonl(folder / "answers.jsonl")
    truth = {t["item"]: t["answer"] for t in read_jsonl(folder / "truth.jsonl")}
    if quick:
        keep = {i["item"] for i in items[: max(60, len(items) // 8)]}
        items = [i for i in items if i["item"] in keep]
        answers = [a for a in answers if a["item"] in keep]
        truth = {k: v for k, v in truth.items() if k in keep}
    if name == "snow-affect":
        # One project per question (emotion), each on its own scale, as a customer would set it up.
        results: dict[str, dict[str, Any]] = {}
        seconds = 0.0
        for emotion in sorted({i["data"]["emotion"] for i in items}):
            mine = [i for i in items if i["data"]["emotion"] == emotion]
            lo, hi = mine[0]["data"]["scale"]
            ids = {i["item"] for i in mine}
            spec = {"type": "rating", "min": lo, "max": hi, "prompt_field": "text"}
            pid, took = platform.load(spec, mine, [a for a in answers if a["item"] in ids], lambda d: d)
            results.update(platform.results(pid))
            seconds += took
        scored = [k for k in truth if k in results]
        errors = [abs(results[k]["details"]["estimate"] - truth[k]["rating"]) for k in scored]
        rounded = [abs(results[k]["response"]["rating"] - truth[k]["rating"]) for k in scored]
        return {"value": sum(errors) / len(errors), "seconds": seconds, "scored": len(errors),
                "also": f"MAE of the rounded rating {sum(rounded) / len(rounded):.2f}"}
    spec = REAL_SPECS[name]
    pid, seconds = platform.load(spec, items, answers, real_data(name))
    responses = {k: r["response"] for k, r in platform.results(pid).items()}
    value, also = score_real(name, responses, truth)
    return {"value": value, "seconds": seconds, "scored": sum(k in responses for k in truth), "also": also}


# The real sets but snow-affect (a project per emotion): each one's spec, and what of an item a task holds.
REAL_SPECS: dict[str, dict[str, Any]] = {
    "conll2003-mturk": {"type": "spans", "labels": ["PER", "LOC", "ORG", "MISC"], "text_field": "text"},
    "otb-init-boxes": {"type": "boxes", "labels": ["target"], "image_field": "image"},
    "urbano-music-sim": {"type": "pairwise", "prompt_field": "query", "a_field": "a", "b_field": "b",
                         "allow_tie": True},
    "crowdspeech-dev-clean": {"type": "text", "prompt_field": "audio"},
}


def real_data(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if name == "conll2003-mturk":
        return lambda d: {"text": d["text"]}
    return lambda d: d


def score_real(name: str, responses: dict[str, Any], truth: dict[str, Any]) -> tuple[float, str]:
    """The set's metric of the results' responses against its truth (higher is better but for
    WER), and what else it says."""
    if name == "conll2003-mturk":
        hit = pred = true = 0
        for k, t in truth.items():
            if k in responses:
                h, p, n = span_f1(responses[k], t)
                hit, pred, true = hit + h, pred + p, true + n
        f1 = 2 * hit / (pred + true) if pred + true else 0.0
        return f1, f"precision {hit / max(pred, 1):.3f}, recall {hit / max(true, 1):.3f}"
    if name == "otb-init-boxes":
        best = [max((iou(b, t["boxes"][0]) for b in responses[k]["boxes"]), default=0.0) if k in responses else 0.0
                for k, t in truth.items()]
        return sum(best) / len(best), f"F1 at IoU 0.5 {sum(b >= 0.5 for b in best) / len(best):.3f}"
    if name == "urbano-music-sim":
        scored = [(responses[k]["choice"], t["choice"]) for k, t in truth.items() if k in responses]
        ab = [(p, t) for p, t in scored if t != "tie"]
        return (sum(p == t for p, t in scored) / len(scored),
                f"on a/b truth {sum(p == t for p, t in ab) / max(len(ab), 1):.3f}")
    if name == "crowdspeech-dev-clean":
        rates = [edit_distance(words(responses[k]["text"]), words(t["text"])) / max(len(words(t["text"])), 1)
                 for k, t in truth.items() if k in responses]
        return 100 * sum(rates) / len(rates), ""
    raise ValueError(name)


# --- simulated annotators -------------------------------------------------------------------


def simulated_workers(rng: random.Random, n: int) -> list[float]:
    """Each worker's chance of answering right: mostly good, some noisy, a few spammers."""
    return [rng.choice([0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5, 1 / 3]) for _ in range(n)]


def kendall_tau(a: list[int], b: list[int]) -> float:
    pos = {x: i for i, x in enumerate(b)}
    n, score = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            score += 1 if pos[a[i]] < pos[a[j]] else -1
    return score / (n * (n - 1) / 2)


def noisy_order(rng: random.Random, truth: list[int], skill: float) -> list[int]:
    """An order with adjacent swaps: a good annotator makes few, a spammer shuffles."""
    if skill < 0.4:
        order = truth[:]
        rng.shuffle(order)
        return order
    order = truth[:]
    for _ in range(round((1 - skill) * 2 * len(order))):
        i = rng.randrange(len(order) - 1)
        order[i], order[i + 1] = order[i + 1], order[i]
    return order


def simulated_types(platform: Platform, quick: bool, seed: int = 7) -> list[dict[str, Any]]:
    """Ranking and multi-label through annotation imports, five answers per task, against the truth."""
    rng = random.Random(seed)
    n_tasks, n_workers = (150, 20) if quick else (600, 40)
    skills = simulated_workers(rng, n_workers)
    rows: list[dict[str, Any]] = []
    # Ranking: four responses, a true order, annotators who swap neighbours.
    orders = {f"r{t}": rng.sample(range(4), 4) for t in range(n_tasks)}
    answers = []
    for task, order in orders.items():
        for w in rng.sample(range(n_workers), 5):
            answers.append({"item": task, "worker": f"w{w}", "answer": {"order": noisy_order(rng, order, skills[w])}})
    spec = {"type": "ranking", "prompt_field": "prompt", "responses_field": "responses"}
    items = [{"item": t, "data": {"prompt": "p", "responses": ["r0", "r1", "r2", "r3"]}} for t in orders]
    pid, seconds = platform.load(spec, items, answers, lambda d: d)
    results = platform.results(pid)
    taus = [kendall_tau(results[t]["response"]["order"], orders[t]) for t in orders if t in results]
    points: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for a in answers:
        for place, response in enumerate(a["answer"]["order"]):
            points[a["item"]][response] += 3 - place
    borda = {t: sorted(range(4), key=lambda r: (-points[t][r], r)) for t in orders}
    # The same answers through the aggregator's other order (local Kemenization), in process.
    workers = sorted({a["worker"] for a in answers})
    by_task: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for a in answers:
        by_task[a["item"]].append((workers.index(a["worker"]), a["answer"]))
    kemeny = RankingAggregator(method="kemeny").fit([by_task[t] for t in orders], n_workers=len(workers),
                                                     contexts=[{"k": 4}] * len(orders))
    kemeny_tau = sum(kendall_tau(r.response["order"], orders[t]) for r, t in zip(kemeny.results_, orders,
                                                                                  strict=True)) / len(orders)
    rows.append({"type": "ranking (4 responses, 5 answers)", "metric": "Kendall's tau",
                 "value": sum(taus) / len(taus),
                 "baseline": sum(kendall_tau(borda[t], orders[t]) for t in orders) / len(orders),
                 "baseline_name": f"plain Borda; weighted Kemeny {kemeny_tau:.3f}", "seconds": seconds})
    # Multi-label: five labels, each present with probability 0.3; annotators flip each label.
    labels = ["a", "b", "c", "d", "e"]
    truths = {f"m{t}": [x for x in labels if rng.random() < 0.3] for t in range(n_tasks)}
    answers = []
    votes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for task, present in truths.items():
        for w in rng.sample(range(n_workers), 5):
            given = [x for x in labels if (x in present) == (rng.random() < max(skills[w], 0.5))]
            answers.append({"item": task, "worker": f"w{w}", "answer": {"labels": given}})
            for x in given:
                votes[task][x] += 1
    spec = {"type": "classification", "labels": labels, "multi": True}
    items = [{"item": t, "data": {"text": t}} for t in truths]
    pid, seconds = platform.load(spec, items, answers, lambda d: d)
    results = platform.results(pid)
    right = sum((x in results[t]["response"]["labels"]) == (x in truths[t]) for t in truths for x in labels)
    majority = sum((votes[t][x] >= 3) == (x in truths[t]) for t in truths for x in labels)
    rows.append({"type": "multi-label (5 labels, 5 answers)", "metric": "accuracy per label",
                 "value": right / (len(truths) * len(labels)), "baseline": majority / (len(truths) * len(labels)),
                 "baseline_name": "per-label majority", "seconds": seconds})
    return rows


def adaptive(platform: Platform, quick: bool, seed: int = 11) -> list[dict[str, Any]]:
    """Labels needed by adaptive redundancy against a fixed five, annotators working through the API.

    The annotators are ``quality.simulate``'s (good, mediocre, spammers, adversarial, biased:
    each a confusion matrix); each answers from their own matrix's row for the true label.
    """
    from qistas.quality import simulate_classification

    rng = random.Random(seed)
    n_tasks, n_workers = (150, 16) if quick else (400, 24)
    labels = ["x", "y", "z"]
    confusions = simulate_classification(1, n_workers, len(labels), 1, mix=(0.5, 0.25, 0.1, 0.05, 0.1),
                                         random_state=seed).confusions
    truth = [rng.randrange(len(labels)) for _ in range(n_tasks)]
    spec = {"type": "classification", "labels": labels, "text_field": "text"}
    out = []
    for name, redundancy in (("fixed 5", {"min": 5, "max": 5}),
                             ("adaptive 2..5, target 0.9", {"min": 2, "max": 5, "target": 0.9}),
                             ("adaptive 2..5, target 0.95", {"min": 2, "max": 5, "target": 0.95}),
                             ("adaptive 2..5, target 0.99", {"min": 2, "max": 5, "target": 0.99}),
                             ("adaptive 1..5, target 0.95", {"min": 1, "max": 5, "target": 0.95})):
        answerer = random.Random(seed + 1)  # every policy meets the same annotators' coins
        pid = platform.project(spec, redundancy)
        platform.upload(f"/projects/{pid}/tasks", [{"unique_id": f"t{i}", "data": {"text": f"t{i}"}}
                                                    for i in range(n_tasks)])
        answers, idle, fitted_at = 0, set(), 0
        while len(idle) < n_workers:
            for w in range(n_workers):
                if w in idle:
                    continue
                client = platform.annotator(w)
                taken = client.post(f"/projects/{pid}/assignments")
                if taken.status_code == 204:
                    idle.add(w)
                    continue
                lease = check(taken)
                i = int(lease["task"]["data"]["text"][1:])
                label = labels[answerer.choices(range(len(labels)), weights=confusions[w, truth[i]])[0]]
                check(client.post(f"/assignments/{lease['id']}/submit", json={"answer": {"label": label}}))
                answers += 1
                if answers >= MIN_ANSWERS_TO_FIT and answers >= fitted_at * (1 + REFIT_GROWTH):
                    # What the server's background refit does, at the same points, here in step.
                    check(platform.owner.post(f"/projects/{pid}/quality/refit"), 200)
                    fitted_at = answers
        check(platform.owner.post(f"/projects/{pid}/quality/refit"), 200)
        results = platform.results(pid)
        accuracy = sum(results[f"t{i}"]["response"]["label"] == labels[truth[i]] for i in range(n_tasks)
                       if f"t{i}" in results) / n_tasks
        out.append({"policy": name, "answers": answers, "per_task": answers / n_tasks, "accuracy": accuracy})
    return out


def timing() -> list[tuple[str, float]]:
    """Milliseconds to decide one task of five answers, per type, with no fitted model."""
    from qistas.domain.tasktypes import parse_spec, type_of

    text = "Alice met Bob in Amman yesterday and they went to the market together"
    cases = [
        ({"type": "classification", "labels": ["a", "b", "c"]}, {"text": "x"},
         [{"label": "a"}, {"label": "a"}, {"label": "b"}, {"label": "a"}, {"label": "c"}]),
        ({"type": "classification", "labels": ["a", "b", "c", "d"], "multi": True}, {"text": "x"},
         [{"labels": ["a"]}, {"labels": ["a", "b"]}, {"labels": ["a"]}, {"labels": []}, {"labels": ["a", "d"]}]),
        ({"type": "spans", "labels": ["PER", "LOC"]}, {"text": text},
         [{"spans": [{"start": 0, "end": 5, "label": "PER"}, {"start": 10, "end": 13, "label": "PER"},
                     {"start": 17, "end": 22, "label": "LOC"}]}] * 4 + [{"spans": []}]),
        ({"type": "boxes", "labels": ["car"]}, {"image": "x"},
         [{"boxes": [{"x": 10 + i, "y": 10, "w": 100, "h": 50, "label": "car"}]} for i in range(5)]),
        ({"type": "pairwise"}, {"prompt": "p", "a": "x", "b": "y"},
         [{"choice": c} for c in "aabta".replace("t", "b")]),
        ({"type": "ranking"}, {"prompt": "p", "responses": ["a", "b", "c", "d"]},
         [{"order": [0, 1, 2, 3]}, {"order": [1, 0, 2, 3]}, {"order": [0, 1, 3, 2]}, {"order": [0, 1, 2, 3]},
          {"order": [3, 2, 1, 0]}]),
        ({"type": "rating", "min": 1, "max": 7}, {}, [{"rating": r} for r in (5, 6, 5, 4, 7)]),
        ({"type": "text"}, {"prompt": "p"},
         [{"text": "the quick brown fox jumps over the lazy dog near the river bank today"}] * 3
         + [{"text": "the quick brown fox jumped over a lazy dog near the river bank today"},
            {"text": "a quick brown fox jumps over the lazy dog by the river bank"}]),
    ]
    out = []
    for raw, data, answers in cases:
        spec = parse_spec(raw)
        task_type = type_of(spec)
        pairs = list(enumerate(answers))
        task_type.aggregate(spec, data, pairs, None)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.3:
            task_type.aggregate(spec, data, pairs, None)
            n += 1
        label = raw["type"] + (" (multi)" if raw.get("multi") else "")
        out.append((label, 1000 * (time.perf_counter() - start) / n))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="subsampled real sets, smaller simulations")
    parser.add_argument("--sets", default=",".join(REFERENCES), help="comma-separated real sets, or none")
    args = parser.parse_args()
    print("Deciding one task of five answers (no fitted model), ms:")
    print("| type | ms |\n|---|---:|")
    for label, ms in timing():
        print(f"| {label} | {ms:.3f} |")
    with serve(None, 1) as server:
        platform = Platform(server)
        if DATA.exists() and args.sets != "none":
            print("\nReal crowd sets, through import -> annotations import -> refit -> export:")
            print("| set | metric | Qistas | best reference | others | tasks scored | seconds |")
            print("|---|---|---:|---:|---|---:|---:|")
            for name in args.sets.split(","):
                found = real_set(platform, name, args.quick)
                metric, ref, _, others = REFERENCES[name]
                also = f" ({found['also']})" if found["also"] else ""
                print(f"| {name} | {metric} | {found['value']:.3f}{also} | {ref} | {others} | {found['scored']} | "
                      f"{found['seconds']:.1f} |", flush=True)
        else:
            print(f"\n{DATA} is missing: real sets skipped")
        print("\nSimulated annotators (seeded), five answers per task:")
        print("| type | metric | Qistas | baseline | seconds |\n|---|---|---:|---|---:|")
        for row in simulated_types(platform, args.quick):
            print(f"| {row['type']} | {row['metric']} | {row['value']:.3f} | {row['baseline']:.3f} "
                  f"({row['baseline_name']}) | {row['seconds']:.1f} |", flush=True)
        print("\nAdaptive redundancy (classification, 3 labels, simulated annotators through take/submit):")
        print("| policy | answers | per task | accuracy |\n|---|---:|---:|---:|")
        rows = adaptive(platform, args.quick)
        for row in rows:
            print(f"| {row['policy']} | {row['answers']} | {row['per_task']:.2f} | {row['accuracy']:.3f} |")
        fixed = rows[0]
        for row in rows[1:]:
            print(f"{row['policy']}: {100 * row['answers'] / fixed['answers']:.0f}% of fixed-5's answers, "
                  f"accuracy {row['accuracy'] - fixed['accuracy']:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
