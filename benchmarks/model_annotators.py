"""Models as annotators: how many people's answers does a model save, at what accuracy?

    python benchmarks/model_annotators.py [--data-dir DIR] [--items 300] [--accuracies 0.85 0.55]
                                          [--seed 0] [--quick]

For each crowd set (/work/shared/datasets/crowd, see its README), ``--items`` gold items are
drawn (seeded); a tenth of them (at least 20) become gold tasks of the project, the rest its
tasks. The project runs adaptive redundancy as the server does (``redundancy`` min 1, max 5,
target 0.9; ``model_annotators.min_human_answers`` 1), on a fresh SQLite database through
the domain functions the routes call:

- people: each task's recorded answers are given one at a time, in the order of the source
  file (the first answer of a repeated (worker, item) pair kept), each by a user standing
  for that real worker: a lease is taken on the task and ``annotations.submit`` settles it,
  until the task completes or its recorded answers run out. People do not answer the gold
  tasks (the same in every arm). The project is refitted as the server's background loop
  does (``quality.refit`` whenever ``projects_due_for_refit`` names it, checked every 25
  answers) and once more at the end;
- a model (the arms with one): before any person answers, a pre-label job with
  ``"as": "annotations"`` sends every task, gold ones too, to ``tests/model_server.py`` over
  loopback HTTP through the pre-label worker (``workers.prelabeler``). The simulated model
  answers the gold label with probability p, else another label drawn uniformly; the task
  data carries that answer for the test server to say it back.

Printed per set and arm: people's answers per task, the share saved against people alone,
accuracy of the final results against gold (tasks whose answers ran out are scored on the
consensus of what they had), and the change in accuracy in points. The aims tested: at
p = 0.85, at least 40% fewer people's answers; at p = 0.55, no loss of accuracy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))
from sqlalchemy import select  # noqa: E402
from tests.model_server import ModelServer, model_server  # noqa: E402

from qistas.config import Settings  # noqa: E402
from qistas.db.engine import Database  # noqa: E402
from qistas.db.enums import LeaseStatus, TaskStatus  # noqa: E402
from qistas.db.migrate import upgrade  # noqa: E402
from qistas.db.models import Organization, Project, Task, User  # noqa: E402
from qistas.db.queries import annotations as answer_queries  # noqa: E402
from qistas.db.queries import assignments as lease_queries  # noqa: E402
from qistas.db.types import utcnow  # noqa: E402
from qistas.domain import annotations, imports, projects, quality, users  # noqa: E402
from qistas.domain import model_endpoints as endpoints  # noqa: E402
from qistas.domain.destinations import Policy  # noqa: E402
from qistas.domain.sealing import Keyring  # noqa: E402
from qistas.domain.tasktypes import parse_spec  # noqa: E402
from qistas.workers.prelabeler import Prelabeler  # noqa: E402
from quality import DATASETS, find_data_dir, load  # noqa: E402

REDUNDANCY = {"min": 1, "max": 5, "target": 0.9}
REFIT_EVERY = 25
SECRET = "bench-secret-key-0123456789abcdef0123456789"


def prepare(d: dict, items: np.ndarray) -> list[list[tuple[int, int]]]:
    """Each item's recorded (worker, label) answers in file order, a repeated pair's first kept."""
    wanted = {int(t): i for i, t in enumerate(items)}
    rows: list[list[tuple[int, int]]] = [[] for _ in items]
    seen: set[tuple[int, int]] = set()
    for t, w, lab in zip(d["tasks"], d["workers"], d["labels"], strict=True):
        i = wanted.get(int(t))
        if i is None or (int(t), int(w)) in seen:
            continue
        seen.add((int(t), int(w)))
        rows[i].append((int(w), int(lab)))
    return rows


def model_labels(gold: np.ndarray, n_labels: int, p: float, rng: np.random.Generator) -> np.ndarray:
    right = rng.random(gold.size) < p
    other = (gold + rng.integers(1, n_labels, gold.size)) % n_labels  # uniform over the other labels
    return np.where(right, gold, other)


def run_arm(d: dict, items: np.ndarray, n_gold: int, rows: list[list[tuple[int, int]]], names: list[str],
            said: np.ndarray | None, llm: ModelServer, folder: Path, target: float) -> dict[str, Any]:
    """One project: people (and a model when ``said`` is given); its figures."""
    url = f"sqlite:///{folder}/arm.db"
    upgrade(url)
    db = Database.from_url(url)
    settings = Settings(home=folder, database_url=url, secret_key=SECRET, background_workers=False,
                        model_retry_base_seconds=0.05)
    spec = {"type": "classification", "labels": names, "text_field": "text"}
    gold = d["gold"][items]
    try:
        with db.writer.begin() as session:
            org = users.create_org(session, name="Bench", slug="bench")
            owner = users.create_user(session, email="owner@bench.test", role="owner", org_id=org.id)
            project = projects.create_project(session, org_id=org.id, actor=owner, name="bench", task=spec,
                                              redundancy={**REDUNDANCY, "target": target}, workforce="org")
            data = [{"data": {"text": f"ok {names[said[i]] if said is not None else names[0]}"},
                     **({"gold": {"label": names[gold[i]]}} if i < n_gold else {})} for i in range(items.size)]
            imports.import_tasks(session, project=project, rows=enumerate(data, 1))
            project_id, owner_id, org_id = project.id, owner.id, org.id
            task_ids = list(session.scalars(select(Task.id).where(Task.project_id == project_id).order_by(Task.id)))
        model_seconds = 0.0
        if said is not None:
            started = time.perf_counter()
            with db.writer.begin() as session:
                endpoint = endpoints.create_endpoint(
                    session, org=session.get_one(Organization, org_id),
                    fields={"name": "sim", "base_url": llm.base_url, "model": "sim-model", "max_concurrency": 8,
                            "requests_per_minute": None, "timeout_seconds": 10.0, "allow_private": True,
                            "price_input_per_1k": None, "price_output_per_1k": None},
                    api_key=None, policy=Policy(allow_private=True), keyring=Keyring.from_settings(settings))
                endpoints.create_job(session, project=session.get_one(Project, project_id), endpoint=endpoint,
                                     actor=session.get_one(User, owner_id), template={"user": "{text}"},
                                     only_pending=True, mode="annotations")
            worker = Prelabeler(settings, db)
            while worker.step():
                pass
            model_seconds = time.perf_counter() - started
        people: dict[int, int] = {}
        used = 0
        for i in range(n_gold, items.size):
            for worker_index, label in rows[i]:
                with db.writer.begin() as session:
                    task = session.get_one(Task, task_ids[i])
                    if task.status != TaskStatus.PENDING:
                        break
                    if worker_index not in people:
                        people[worker_index] = users.create_user(
                            session, email=f"w{worker_index}@bench.test", role="annotator", org_id=org_id).id
                    annotator = session.get_one(User, people[worker_index])
                    if lease_queries.TAKE_SLOT.run(session, task_id=task.id) != 1:
                        break  # not asked for another answer
                    now = utcnow()
                    lease = lease_queries.NEW_LEASE.first(
                        session, task_id=task.id, project_id=project_id, annotator_id=annotator.id,
                        status=LeaseStatus.ACTIVE, created_at=now, expires_at=now + timedelta(minutes=10))
                    assert lease is not None
                    annotations.submit(session, assignment_id=lease.id, annotator=annotator,
                                       answer={"label": names[label]}, seconds=1.0, now=now)
                used += 1
                if used % REFIT_EVERY == 0 and project_id in quality.projects_due_for_refit(db):
                    quality.refit(db, project_id=project_id)
        quality.refit(db, project_id=project_id)
        correct = 0
        with db.reader() as session:
            project = session.get_one(Project, project_id)
            parsed = parse_spec(project.task_spec)
            for i in range(n_gold, items.size):
                task = session.get_one(Task, task_ids[i])
                response = task.response
                if task.status == TaskStatus.PENDING:  # its recorded answers ran out
                    answers = answer_queries.ANSWERS.all(session, task_id=task.id)
                    response = quality.task_consensus(session, project=project, spec=parsed, task_id=task.id,
                                                      data=task.data, answers=answers).response if answers else None
                correct += int(response is not None and response.get("label") == names[gold[i]])
        n = items.size - n_gold
        return {"labels": used / n, "accuracy": correct / n, "model_seconds": model_seconds}
    finally:
        db.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--datasets", nargs="*", default=DATASETS)
    p.add_argument("--items", type=int, default=300, help="gold items drawn per set")
    p.add_argument("--accuracies", type=float, nargs="*", default=[0.85, 0.55])
    p.add_argument("--targets", type=float, nargs="*", default=[0.8, 0.9, 0.95, 0.98],
                   help="redundancy targets of people alone (the curve the model arms are read against)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="150 items of three sets")
    args, _ = p.parse_known_args()
    if args.quick:
        args.items, args.datasets = 150, ["rte", "temp", "web"]
    if REDUNDANCY["target"] not in args.targets:
        args.targets.append(REDUNDANCY["target"])
    data_dir = find_data_dir(args.data_dir)
    print(f"redundancy {REDUNDANCY}, min_human_answers 1; {args.items} gold items per set, a tenth as gold tasks; "
          f"seed {args.seed}")
    header = (f"{'set':<10} {'arm':<13} {'target':>6} {'people/task':>11} {'accuracy':>9} "
              f"{'people alone, same accuracy':>28} {'saved':>6} {'model s':>8}")
    print(header)
    print("-" * len(header))
    verdicts: dict[float, list[bool]] = {a: [] for a in args.accuracies}
    with model_server() as llm, tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            d = load(data_dir, name)
            rng = np.random.default_rng(args.seed)
            candidates = np.flatnonzero(d["gold"] >= 0)
            items = rng.permutation(candidates)[: args.items]
            n_gold = max(20, items.size // 10)
            rows = prepare(d, items)
            names = [f"c{v}" for v in range(d["n_labels"])]  # label indices as names: the sets' own strings vary
            shared = (d, items, n_gold, rows, names)

            def arm(said: np.ndarray | None, target: float, shared: tuple = shared) -> dict[str, Any]:
                folder = Path(tempfile.mkdtemp(dir=tmp))
                return run_arm(*shared, said, llm, folder, target)

            curve = []  # people alone: (people/task, accuracy) per target
            for target in args.targets:
                found = arm(None, target)
                curve.append((found["labels"], found["accuracy"]))
                print(f"{name:<10} {'people':<13} {target:>6.2f} {found['labels']:>11.2f} {found['accuracy']:>9.3f}",
                      flush=True)
            for accuracy in args.accuracies:
                said = model_labels(d["gold"][items], d["n_labels"], accuracy, np.random.default_rng(args.seed + 1))
                found = arm(said, REDUNDANCY["target"])
                same = people_for(curve, found["accuracy"])
                saved = None if same is None else 1 - found["labels"] / same
                shown = f"{same:.2f}" if same is not None else f"> {max(c[0] for c in curve):.2f} (beyond)"
                print(f"{name:<10} {'+model ' + format(accuracy, '.2f'):<13} {REDUNDANCY['target']:>6.2f} "
                      f"{found['labels']:>11.2f} {found['accuracy']:>9.3f} {shown:>28} "
                      f"{'' if saved is None else format(saved, '.0%'):>6} {found['model_seconds']:>8.1f}", flush=True)
                base = curve[args.targets.index(REDUNDANCY["target"])]
                if accuracy >= 0.85:
                    verdicts[accuracy].append(saved is None or saved >= 0.40)
                else:
                    verdicts[accuracy].append(found["accuracy"] >= base[1] - 0.005)
    for accuracy, met in verdicts.items():
        aim = ("at least 40% fewer people's answers for the same accuracy" if accuracy >= 0.85
               else f"no loss of accuracy against people alone at target {REDUNDANCY['target']} (0.5 point)")
        print(f"model {accuracy:.2f}: {aim}: met on {sum(met)} of {len(met)} sets")


def people_for(curve: list[tuple[float, float]], accuracy: float) -> float | None:
    """People's answers per task that people alone need for ``accuracy``: linear between the
    targets run (the curve taken as rising); None when no target reached it."""
    points = sorted(curve)
    best = points[0]
    if accuracy <= best[1]:
        return best[0]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        y0 = max(y0, best[1])
        if y1 >= accuracy > y0:
            return x0 + (x1 - x0) * (accuracy - y0) / (y1 - y0)
        best = max(best, (x1, y1), key=lambda p: p[1])
    return None


if __name__ == "__main__":
    main()
