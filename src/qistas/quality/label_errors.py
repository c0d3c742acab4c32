"""Which delivered labels are likely wrong: a ranking of tasks for a second look.

Given each task's answers, the label that was delivered for it and a worker model
(per-worker confusion matrices and class priors, as the Dawid-Skene family fits them),
the probability that the delivered label is wrong is one minus its posterior:

    P(wrong_t) = 1 - P(z_t = delivered_t | answers of t)
               = 1 - prior[d] prod_i conf[w_i, d, l_i] / sum_k prior[k] prod_i conf[w_i, k, l_i]

(Dawid and Skene 1979). Ranking tasks by it puts first the tasks whose answers came from
unreliable workers or split between labels, weighing each answer by what the model knows of
its worker rather than counting heads (the majority-vote baseline, :func:`disagreement_scores`).

In-sample, a task's own answers helped fit the confusions that judge it; with few answers per
worker a lone worker's matrix is shaped by the very tasks it then scores. The cross-fitted
variant (``n_folds >= 2``) splits the tasks into random folds and scores each fold with a
model fitted on the answers of the other folds only (workers unseen there get the average
confusion), the same cross-fitting as ``benchmarks/redundancy.py`` and the model selection
of :class:`~qistas.quality.selection.AutoClassifier` (Chernozhukov et al. 2018 for the
device in general). It is the analogue of the out-of-sample predicted probabilities that
confident learning needs (Northcutt, Jiang and Chuang 2021); cleanlab's multi-annotator
CROWDLAB (Goh, Tkachenko and Mueller 2022) combines such probabilities from a feature
model with annotator agreement, and is compared in ``benchmarks/label_errors.py``.

Dawid, A. P. and Skene, A. M. (1979). Maximum likelihood estimation of observer error-rates
using the EM algorithm. Applied Statistics 28(1), 20-28.
Chernozhukov, V. et al. (2018). Double/debiased machine learning for treatment and structural
parameters. The Econometrics Journal 21(1), C1-C68.
Northcutt, C., Jiang, L. and Chuang, I. (2021). Confident learning: estimating uncertainty in
dataset labels. JAIR 70, 1373-1411.
Goh, H. W., Tkachenko, U. and Mueller, J. (2022). CROWDLAB: supervised learning to infer
consensus labels and quality scores for data with multiple annotators. arXiv:2210.06812.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._base import BaseClassifier, BaseEstimator
from ._validation import Answers, check_answers
from .defaults import default_classifier
from .online import WorkerModel, posterior_for_task


def _check_delivered(delivered: object, n_tasks: int, n_labels: int) -> np.ndarray:
    d = np.asarray(delivered, dtype=np.int64).reshape(-1)
    if d.shape != (n_tasks,):
        raise ValueError(f"delivered must hold one label per task ({n_tasks}), got {d.shape[0]}")
    if d.size and (d.min() < 0 or d.max() >= n_labels):
        raise ValueError(f"delivered labels must be in [0, {n_labels})")
    return d


def disagreement_scores(tasks: object, workers: object, labels: object, delivered: object, *,
                        n_tasks: int | None = None, n_labels: int | None = None) -> np.ndarray:
    """The baseline: the share of each task's answers that differ from its delivered label.

    With the majority vote delivered, this is the share of answers against the majority.
    A task without answers scores 0.
    """
    data = check_answers(tasks, workers, labels, n_tasks=n_tasks, n_labels=n_labels)
    d = _check_delivered(delivered, data.n_tasks, data.n_labels)
    total = np.bincount(data.tasks, minlength=data.n_tasks)
    against = np.bincount(data.tasks, weights=data.labels != d[data.tasks], minlength=data.n_tasks)
    return against / np.maximum(total, 1)


def rank(scores: np.ndarray, *, random_state: object = None) -> np.ndarray:
    """Task indices from the most to the least likely wrong; ties in a random (seeded) order,
    so that a coarse score (three answers give four values) is not ordered by task index."""
    s = np.asarray(scores, dtype=np.float64)
    shuffle = np.random.default_rng(random_state).permutation(s.size)  # type: ignore[arg-type]
    return shuffle[np.argsort(-s[shuffle], kind="stable")]


class LabelErrorScorer(BaseEstimator):
    """Probability that each task's delivered label is wrong under a worker model.

    ``fit(tasks, workers, labels, delivered, model=...)`` scores with the given fitted
    :class:`~qistas.quality.online.WorkerModel` (in-sample: the model a project stores).
    Without ``model``, ``estimator`` (a factory of an unfitted classifier with
    ``confusions_`` and ``priors_``; the default classifier when None) is fitted: on all
    answers when ``n_folds`` is 0, else once per fold on the answers of the other folds
    (cross-fitted). Folds are drawn with ``random_state``.

    Fitted attributes: ``scores_`` (n_tasks,) P(delivered label wrong); ``posteriors_``
    (n_tasks, n_labels); ``ranking_`` task indices, most likely wrong first (ties in a
    seeded random order). A task without answers scores from the priors alone.
    """

    def __init__(self, estimator: Callable[[], BaseClassifier] | None = None, n_folds: int = 0,
                 random_state: object = None) -> None:
        self.estimator = estimator
        self.n_folds = n_folds
        self.random_state = random_state

    def fit(self, tasks: object, workers: object, labels: object, delivered: object, *,
            model: WorkerModel | None = None, n_tasks: int | None = None, n_workers: int | None = None,
            n_labels: int | None = None) -> LabelErrorScorer:
        data = check_answers(tasks, workers, labels, n_tasks=n_tasks, n_workers=n_workers, n_labels=n_labels)
        cross = n_folds_of(self.n_folds) >= 2
        if model is not None and cross:
            raise ValueError("a given model is scored in-sample: pass n_folds=0, or no model to cross-fit")
        if model is not None and model.n_labels != data.n_labels:
            raise ValueError(f"the model has {model.n_labels} labels, the answers {data.n_labels}")
        d = _check_delivered(delivered, data.n_tasks, data.n_labels)
        rng = np.random.default_rng(self.random_state)  # type: ignore[arg-type]
        folds = rng.integers(0, self.n_folds, data.n_tasks) if cross else np.zeros(data.n_tasks, dtype=np.int64)
        order = np.argsort(data.tasks, kind="stable")
        bounds = np.searchsorted(data.tasks[order], np.arange(data.n_tasks + 1))
        post = np.empty((data.n_tasks, data.n_labels))
        for f in np.unique(folds):
            fitted = model if model is not None else self._fit_model(
                data, train=folds[data.tasks] != f if cross else None)
            for t in np.flatnonzero(folds == f):
                rows = order[bounds[t]:bounds[t + 1]]
                post[t] = posterior_for_task(data.workers[rows], data.labels[rows], fitted.confusions,
                                             fitted.priors, fitted.default_confusion)
        self.posteriors_ = post
        self.scores_ = 1.0 - post[np.arange(data.n_tasks), d]
        self.ranking_ = rank(self.scores_, random_state=rng)
        return self

    def _fit_model(self, data: Answers, *, train: np.ndarray | None) -> WorkerModel:
        keep = np.ones(data.n_answers, dtype=bool) if train is None else train
        est = (self.estimator or default_classifier)()
        est.fit(data.tasks[keep], data.workers[keep], data.labels[keep], n_tasks=data.n_tasks,
                n_workers=data.n_workers, n_labels=data.n_labels)
        fitted = WorkerModel.from_estimator(est)
        # workers without an answer in the training folds: the average of the seen workers' matrices
        seen = np.bincount(data.workers[keep], minlength=data.n_workers) > 0
        if seen.any() and not seen.all():
            default = fitted.confusions[seen].mean(axis=0)
            conf = fitted.confusions.copy()
            conf[~seen] = default
            fitted = WorkerModel(conf, fitted.priors, default)
        return fitted


def n_folds_of(value: object) -> int:
    n = int(value)  # type: ignore[call-overload]
    if n < 0 or n == 1:
        raise ValueError(f"n_folds must be 0 (in-sample) or at least 2, got {value}")
    return n
