"""Planted fraud in simulated workforces on the crowd sets: are the flags right, and what does
excluding the flagged annotators' answers buy?

    python benchmarks/fraud.py [--data-dir DIR] [--sets rte temp sentiment music] [--seeds 0 1]
                               [--tasks 800] [--quick]

Each run is a project on a fresh SQLite database, worked through the server's own engine
(``assignments.claim`` and ``annotations.submit``, the calls behind the API) on a simulated
clock: the server measures the time from lease to submit itself, exactly as in production.
Tasks: ``--tasks`` gold items of the set (all of them when it has fewer), drawn at random; 15% of them are the project's
gold tasks (gold share 0.2, the gold threshold off so that only the fraud flags act),
the rest are scored against the set's gold at the end. Redundancy: 3 answers per task.

The workforce, 18 annotators:

- 12 honest: each answers with the confusion matrix of a real worker of the set (measured
  on gold, Laplace-smoothed; only workers with 20 answers on gold and an accuracy above
  1/K + 0.1), drawn with replacement; time per task lognormal around a personal median
  of 6 to 15 s.
- 2 spammers: a uniformly random label, at a human pace.
- 2 fast clickers: one label for everything (each its own), 0.5 to 2 s a task.
- 1 colluding pair: both give the same answer to every task, from an answer key drawn once
  per task with a real worker's confusion; a human pace.

Then ``domain.fraud.detect`` (what ``GET /projects/{id}/fraud`` runs) flags annotators;
precision and recall are over the 6 planted ones. Every flagged annotator is excluded
(``domain.fraud.act``, what ``POST .../exclude`` runs): their answers stop counting, their
tasks go back to pending, and the remaining annotators answer them. Accuracy (non-gold tasks,
the server's result after a refit, as its background job does) is measured before
(flagged answers kept) and after (excluded).
"""

from __future__ import annotations

import argparse
import heapq
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "src"))
from sqlalchemy import select  # noqa: E402

from qistas.db.engine import Database  # noqa: E402
from qistas.db.migrate import upgrade  # noqa: E402
from qistas.db.models import Project, Task, User  # noqa: E402
from qistas.domain import annotations, assignments, fraud, imports, projects, quality, users  # noqa: E402
from qistas.errors import Forbidden  # noqa: E402
from quality import find_data_dir, load  # noqa: E402

PLANTED = ("spammer", "fast_clicker", "colluder")
START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Annotator:
    kind: str  # honest | spammer | fast_clicker | colluder
    user_id: int
    confusion: np.ndarray | None  # K x K, honest only
    median_s: float
    label: int = 0  # fast clickers' one label


def templates(data: dict[str, Any]) -> list[np.ndarray]:
    """Confusion matrices of the set's real workers with enough gold answers, above chance."""
    K = data["n_labels"]
    gold = data["gold"][data["tasks"]]
    found = []
    for w in np.unique(data["workers"]):
        mine = (data["workers"] == w) & (gold >= 0)
        if mine.sum() < 20:
            continue
        counts = np.ones((K, K))
        np.add.at(counts, (gold[mine], data["labels"][mine]), 1.0)
        if (gold[mine] == data["labels"][mine]).mean() > 1 / K + 0.1:
            found.append(counts / counts.sum(axis=1, keepdims=True))
    return found


def build(db: Database, data: dict[str, Any], n_tasks: int,
          rng: np.random.Generator) -> tuple[int, int, dict[int, int]]:
    K = data["n_labels"]
    labels = [str(i) for i in range(K)]
    items = rng.permutation(np.flatnonzero(data["gold"] >= 0))[:n_tasks]
    n_gold = int(round(0.15 * len(items)))
    with db.writer.begin() as session:
        org = users.create_org(session, name="bench", slug="bench")
        owner = users.create_user(session, email="owner@bench.test", role="owner", org_id=org.id)
        project = projects.create_project(
            session, org_id=org.id, actor=owner, name="fraud", redundancy={"min": 3, "max": 3},
            task={"type": "classification", "labels": labels, "text_field": "text"},
            gold={"share": 0.2, "min_answers": 5, "min_accuracy": 0.0})
        rows = []
        for n, item in enumerate(items):
            row: dict[str, Any] = {"data": {"text": f"item {item}", "item": int(item)}}
            if n < n_gold:
                row["gold"] = {"label": labels[data["gold"][item]]}
            rows.append((n, row))
        imports.import_tasks(session, project=project, rows=rows)
        truth = {t.id: int(data["gold"][t.data["item"]])
                 for t in session.scalars(select(Task).where(Task.project_id == project.id))}
        return project.id, owner.id, truth


def workforce(db: Database, data: dict[str, Any], rng: np.random.Generator) -> list[Annotator]:
    pool = templates(data)
    kinds = ["honest"] * 12 + ["spammer"] * 2 + ["fast_clicker"] * 2 + ["colluder"] * 2
    people = []
    with db.writer.begin() as session:
        for n, kind in enumerate(kinds):
            user = users.create_user(session, email=f"w{n}@bench.test", role="annotator")
            fast = kind == "fast_clicker"
            people.append(Annotator(kind=kind, user_id=user.id,
                                    confusion=pool[rng.integers(len(pool))] if kind == "honest" else None,
                                    median_s=rng.uniform(0.5, 2.0) if fast else rng.uniform(6, 15),
                                    label=int(rng.integers(data["n_labels"]))))
    return people


def work(db: Database, project_id: int, people: list[Annotator], truth: dict[int, int], key: dict[int, int],
         K: int, rng: np.random.Generator, clock: datetime) -> datetime:
    """Everyone takes and answers tasks at their own pace until nothing is left for anyone."""
    queue = [(clock + timedelta(seconds=float(rng.uniform(0, 10))), n) for n in range(len(people))]
    heapq.heapify(queue)
    last = clock
    while queue:
        now, n = heapq.heappop(queue)
        person = people[n]
        with db.writer.begin() as session:
            project, user = session.get(Project, project_id), session.get(User, person.user_id)
            assert project is not None and user is not None
            try:
                claimed = assignments.claim(session, project=project, annotator=user, now=now, lease_seconds=3600)
            except Forbidden:
                claimed = None  # blocked (excluded)
            if claimed is None:
                continue
            lease, task = claimed
            answer = choose(person, truth[task.id], key, task.id, K, rng)
            seconds = float(rng.lognormal(np.log(person.median_s), 0.4))
            done = now + timedelta(seconds=seconds)
            annotations.submit(session, assignment_id=lease.id, annotator=user, answer={"label": str(answer)},
                               seconds=None, now=done)
        last = max(last, done)
        heapq.heappush(queue, (done + timedelta(seconds=float(rng.uniform(0.2, 1.0) if person.kind == "fast_clicker"
                                                                 else rng.uniform(1, 5))), n))
    return last


def choose(person: Annotator, truth: int, key: dict[int, int], task_id: int, K: int, rng: np.random.Generator) -> int:
    if person.kind == "honest":
        assert person.confusion is not None
        return int(rng.choice(K, p=person.confusion[truth]))
    if person.kind == "spammer":
        return int(rng.integers(K))
    if person.kind == "fast_clicker":
        return person.label
    return key[task_id]


def accuracy(db: Database, project_id: int, truth: dict[int, int]) -> float:
    quality.refit(db, project_id=project_id)
    with db.reader() as session:
        done = session.execute(select(Task.id, Task.response).where(Task.project_id == project_id,
                                                                    Task.is_gold.is_(False))).all()
    right = [r is not None and int(r["label"]) == truth[t] for t, r in done]
    return float(np.mean(right))


def run(data: dict[str, Any], n_tasks: int, seed: int, folder: Path) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    url = f"sqlite:///{folder / f'fraud-{seed}.db'}"
    upgrade(url)
    db = Database.from_url(url)
    try:
        project_id, owner_id, truth = build(db, data, n_tasks, rng)
        people = workforce(db, data, rng)
        K = data["n_labels"]
        pool = templates(data)
        keyed = pool[rng.integers(len(pool))]
        key = {t: int(rng.choice(K, p=keyed[g])) for t, g in truth.items()}
        clock = work(db, project_id, people, truth, key, K, rng, START)
        kept = accuracy(db, project_id, truth)
        started = time.perf_counter()
        with db.reader() as session:
            project = session.get(Project, project_id)
            assert project is not None
            found, _ = fraud.detect(session, projects=[project])
        detect_s = time.perf_counter() - started
        kind_of = {p.user_id: p.kind for p in people}
        flagged = {a.annotator_id for a in found if a.flags}
        planted = {p.user_id for p in people if p.kind in PLANTED}
        flags_of = {a.annotator_id: a.flags for a in found}
        with db.writer.begin() as session:
            project, owner = session.get(Project, project_id), session.get(User, owner_id)
            assert project is not None and owner is not None
            for annotator_id in sorted(flagged):
                fraud.act(session, project=project, annotator_id=annotator_id, name=str(annotator_id),
                          action="exclude", reason="flagged", actor=owner, now=clock)
        work(db, project_id, people, truth, key, K, rng, clock + timedelta(minutes=1))
        excluded = accuracy(db, project_id, truth)
        tp = len(flagged & planted)
        return {
            "precision": tp / len(flagged) if flagged else float("nan"),
            "recall": tp / len(planted),
            "recall_by_kind": {k: np.mean([p.user_id in flagged for p in people if p.kind == k]) for k in PLANTED},
            "false": sorted(flags_of[a] for a in flagged - planted),
            "kept": kept, "excluded": excluded, "detect_s": detect_s,
            "flags_by_kind": {k: sorted({f for a, fl in flags_of.items() if kind_of[a] == k for f in fl})
                              for k in PLANTED},
        }
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--sets", nargs="+", default=["rte", "temp", "sentiment", "music"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--tasks", type=int, default=800)
    parser.add_argument("--quick", action="store_true", help="two sets, one seed, 300 tasks")
    args = parser.parse_args()
    if args.quick:
        args.sets, args.seeds, args.tasks = ["rte", "music"], [0], 300
    data_dir = find_data_dir(args.data_dir)
    print("| set | seed | flagged precision | recall | spammers | fast clickers | colluders | "
          "accuracy, kept | accuracy, excluded | detect, s | honest flagged with |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    totals: list[dict[str, Any]] = []
    for name in args.sets:
        data = load(data_dir, name)
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as folder:
                r = run(data, args.tasks, seed, Path(folder))
            totals.append(r)
            by = r["recall_by_kind"]
            print(f"| {name} | {seed} | {r['precision']:.2f} | {r['recall']:.2f} | {by['spammer']:.1f} | "
                  f"{by['fast_clicker']:.1f} | {by['colluder']:.1f} | {r['kept']:.3f} | {r['excluded']:.3f} | "
                  f"{r['detect_s']:.2f} | {'; '.join(','.join(f) for f in r['false']) or '-'} |", flush=True)
    print(f"\nmean precision {np.nanmean([r['precision'] for r in totals]):.3f}, "
          f"recall {np.mean([r['recall'] for r in totals]):.3f}, "
          f"accuracy kept {np.mean([r['kept'] for r in totals]):.3f} -> "
          f"excluded {np.mean([r['excluded'] for r in totals]):.3f}")


if __name__ == "__main__":
    main()
