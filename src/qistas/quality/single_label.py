"""Single-label classification behind the per-type contract of ``quality/structured.py``.

Answers are ``{"label": name}``; the project's labels fix the classes. ``fit`` runs the
default classifier (``default_classifier()``) on every answer of the project, with gold
tasks clamped to their gold label (``contexts[i]`` is the task's gold label, or None), and
keeps each worker's confusion matrix and the class priors; ``aggregate`` scores one task
with them (``WorkerModel.posterior``: O(answers x labels)), so a task is decided by the same
model after each answer as after a refit.

``confidence`` is the posterior probability of the chosen label. Labels whose posteriors are
equal to within a relative 1e-9 are a tie, which goes to the label listed first in the
spec, never to float rounding (``best_label``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from ._base import best_label
from .defaults import default_classifier
from .online import posterior_for_task
from .structured import TaskResult, WorkerAnswer, check_items

#: A worker's accuracy when nothing is known of them (the gold prior's mean).
PRIOR_ACCURACY = 0.7


def one_coin(accuracy: float, k: int) -> np.ndarray:
    """A (k, k) confusion: right with probability ``accuracy``, else any other label."""
    if k == 1:
        return np.ones((1, 1))
    matrix = np.full((k, k), (1.0 - accuracy) / (k - 1))
    np.fill_diagonal(matrix, accuracy)
    return matrix


class SingleLabelAggregator:
    """Per-task posteriors from per-worker confusion matrices (Dawid & Skene 1979 family)."""

    results_: Sequence[TaskResult]

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)

    def _index(self, answer: Any) -> int:
        return self.labels.index(answer["label"])

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> SingleLabelAggregator:
        check_items(items, n_workers, contexts)
        tasks = [i for i, answers in enumerate(items) for _ in answers]
        workers = [w for answers in items for w, _ in answers]
        labels = [self._index(a) for answers in items for _, a in answers]
        gold = np.array([self.labels.index(g) if g in self.labels else -1 for g in (contexts or [None] * len(items))],
                        dtype=np.int64)
        self.fit_arrays(np.array(tasks, dtype=np.int64), np.array(workers, dtype=np.int64),
                        np.array(labels, dtype=np.int64), n_tasks=len(items), n_workers=n_workers, gold=gold)
        self.results_ = list(self.results_)
        return self

    def fit_arrays(self, tasks: np.ndarray, workers: np.ndarray, labels: np.ndarray, *, n_tasks: int,
                   n_workers: int, gold: np.ndarray) -> SingleLabelAggregator:
        """``fit`` on integer-coded answers: one (task, worker, label index) per answer, in the
        order ``fit`` lists them (by task, then as given); ``gold[i]`` is task i's gold label
        index or -1. For projects too big for a list per task: ``results_`` is then a sequence
        that makes each task's result when asked for it, from ``best_`` and ``confidences_``.
        """
        if not len(tasks) == len(workers) == len(labels):
            raise ValueError("tasks, workers and labels must have one entry per answer")
        if len(gold) != n_tasks:
            raise ValueError(f"gold has {len(gold)} entries for {n_tasks} tasks")
        k = len(self.labels)
        if len(labels) and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"label indices must be in [0, {k})")
        estimator: Any = default_classifier().fit(np.asarray(tasks, dtype=np.int64),
                                                  np.asarray(workers, dtype=np.int64),
                                                  np.asarray(labels, dtype=np.int64), n_labels=k, n_tasks=n_tasks,
                                                  n_workers=max(n_workers, 1), gold=gold)
        self.method_ = str(getattr(estimator, "chosen_", type(estimator).__name__)).lower()
        self.params_: dict[str, Any] = {
            "priors": np.round(estimator.priors_, 6).tolist(),
            "confusions": np.round(estimator.confusions_, 6).tolist(),
        }
        self._load()
        probas = estimator.probas_
        answered = np.bincount(np.asarray(tasks, dtype=np.int64), minlength=n_tasks) > 0
        best = np.array([int(gold[i]) if gold[i] >= 0 else best_label(probas[i]) for i in range(n_tasks)],
                        dtype=np.int64)
        self.best_ = np.where(answered, best, -1)
        self.confidences_ = np.where(answered, probas[np.arange(n_tasks), best] if n_tasks else 0.0, 0.0)
        self.results_ = _Results(self.labels, self.best_, self.confidences_)
        return self

    def load_params(self, params: dict[str, Any]) -> SingleLabelAggregator:
        self.params_ = dict(params)
        self._load()
        return self

    def _load(self) -> None:
        k = len(self.labels)
        confusions = np.asarray(self.params_.get("confusions", []), dtype=np.float64)
        self._confusions = confusions.reshape(-1, k, k) if confusions.size else np.empty((0, k, k))
        self._priors = np.asarray(self.params_.get("priors", np.full(k, 1.0 / k)), dtype=np.float64)

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        if not answers:
            raise ValueError("a task needs at least one answer to aggregate")
        k = len(self.labels)
        if not hasattr(self, "_confusions"):
            self.params_ = {}
            self._load()
        workers = np.array([w for w, _ in answers], dtype=np.int64)
        labels = np.array([self._index(a) for _, a in answers], dtype=np.int64)
        if self._confusions.shape[0] == 0:
            confusions = one_coin(PRIOR_ACCURACY, k)[None]
            posterior = posterior_for_task(np.full(len(workers), -1), labels, confusions, self._priors,
                                           confusions[0])
        else:
            posterior = posterior_for_task(workers, labels, self._confusions, self._priors)
        best = best_label(posterior)
        return TaskResult({"label": self.labels[best]}, float(posterior[best]))


def answer_score(answer: Any, response: Any, context: Any = None) -> float:
    """1.0 when the answer's label is the response's."""
    return float(answer.get("label") == response.get("label"))


class _Results(Sequence[TaskResult]):
    """Each task's ``TaskResult``, made when asked for (``best`` -1: a task with no answers)."""

    def __init__(self, labels: list[str], best: np.ndarray, confidences: np.ndarray) -> None:
        self.labels, self.best, self.confidences = labels, best, confidences

    def __len__(self) -> int:
        return len(self.best)

    @overload
    def __getitem__(self, i: int) -> TaskResult: ...

    @overload
    def __getitem__(self, i: slice) -> list[TaskResult]: ...

    def __getitem__(self, i: int | slice) -> TaskResult | list[TaskResult]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        best = int(self.best[i])
        if best < 0:
            return TaskResult({"label": self.labels[0]}, 0.0, needs_review=True)
        return TaskResult({"label": self.labels[best]}, float(self.confidences[i]))
