"""The contract of the per-type aggregators: fit on a project, then aggregate one task.

Classification estimators work on integer arrays (see :mod:`qistas.quality.classification`).
The other task types answer with structures (spans, boxes, orders, ratings, texts), so their
aggregators take each task's answers as a list of ``(worker, answer)`` pairs, the answer in
Qistas's answer shape for the type (``{"spans": [...]}``, ``{"boxes": [...]}``...). Workers
are indices ``0 .. n_workers - 1``; ``-1`` (or any index the fit did not see) is a worker
the model knows nothing about, who gets the prior.

Every structured aggregator:

* ``fit(items, *, n_workers, contexts=None)`` learns each worker's reliability from all
  tasks of a project and sets ``results_`` (one :class:`TaskResult` per task) and
  ``params_`` (the worker model, JSON-serialisable: plain lists, floats, ints, strings);
* ``load_params(params)`` restores a fitted worker model from ``params_``;
* ``aggregate(answers, context=None)`` decides one task with the worker model it has
  (fitted, loaded, or none: every worker equal) -- cheap, it runs after each answer;
* ``answer_score(answer, response, context=None)`` (a module-level function of each
  type's module) scores one answer against the consensus in [0, 1] for annotator
  reliability reports.

``contexts[i]`` is what the type needs to know of task ``i`` beyond its answers (the text
of a span task, the number of responses of a ranking task, the scale of a rating task);
each type documents its own.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WorkerAnswer = tuple[int, Any]


@dataclass(frozen=True)
class TaskResult:
    """One task's consensus.

    ``response``: a valid answer of the type; where the type has parts (spans, boxes,
    labels of a multi-label task, criteria) it may carry each part's own confidence (a
    ``"confidence"`` key on each span or box; documented per type). ``confidence``: in
    [0, 1], what the type's docstring says it means. ``needs_review``: the answers
    disagree beyond what the type tolerates, so a person should look.
    ``extra``: JSON-serialisable details (an interval, scores), or empty.
    """

    response: dict[str, Any]
    confidence: float
    needs_review: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def check_items(items: Sequence[Sequence[WorkerAnswer]], n_workers: int,
                contexts: Sequence[Any] | None) -> None:
    """Validate the shape of ``fit``'s input (raises ``ValueError``)."""
    if n_workers < 0:
        raise ValueError(f"n_workers must be >= 0, got {n_workers}")
    if contexts is not None and len(contexts) != len(items):
        raise ValueError(f"contexts has {len(contexts)} entries for {len(items)} tasks")
    for i, answers in enumerate(items):
        for worker, _ in answers:
            if not -1 <= worker < n_workers:
                raise ValueError(f"task {i}: worker {worker} is outside 0..{n_workers - 1}")


def canonical(answer: Any) -> str:
    """A canonical text of an answer, so equal answers compare equal."""
    return json.dumps(answer, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class ExactMatchVote:
    """Majority vote over whole answers, for a type with no model of its own.

    Equal answers (as canonical JSON) vote together; every worker weighs the same. The
    response is the answer with the most votes; a tie goes to the one given first (the
    earliest answer in the task's list), never to float rounding. ``confidence`` is the
    winner's share of the votes; ``needs_review`` when no answer has a strict majority.
    The worker model is empty: ``params_`` is ``{}``.
    """

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> ExactMatchVote:
        check_items(items, n_workers, contexts)
        self.results_ = [self.aggregate(answers) for answers in items]
        self.params_: dict[str, Any] = {}
        return self

    def load_params(self, params: dict[str, Any]) -> ExactMatchVote:
        self.params_ = dict(params)
        return self

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        if not answers:
            raise ValueError("a task needs at least one answer to aggregate")
        keys = [canonical(answer) for _, answer in answers]
        counts = Counter(keys)
        best = max(counts.items(), key=lambda kv: (kv[1], -keys.index(kv[0])))[0]
        votes = counts[best]
        return TaskResult(answers[keys.index(best)][1], votes / len(keys), needs_review=2 * votes <= len(keys))


def exact_match_score(answer: Any, response: Any, context: Any = None) -> float:
    """1.0 when the answer is the response, else 0.0."""
    return float(canonical(answer) == canonical(response))
