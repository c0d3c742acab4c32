"""Multi-label classification as one binary truth-inference problem per label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import BaseClassifier, BaseEstimator, best_labels, clone
from ._validation import as_index_array
from .classification import DawidSkene
from .structured import TaskResult, WorkerAnswer, check_items

_TINY = 1e-300  # floor before log


class MultiLabel(BaseEstimator):
    """Fit one copy of ``base_estimator`` per label on "is label j present?" answers.

    Input: ``tasks`` and ``workers`` as for single-label estimators and ``labels`` as an
    (n_answers, n_labels) 0/1 indicator matrix: row ``i`` is the set of labels worker
    ``workers[i]`` chose for ``tasks[i]`` (an empty row means "none of them").

    Fitted attributes: ``probas_`` (n_tasks, n_labels) = P(label j applies),
    ``labels_`` (n_tasks, n_labels) in {0, 1}, or -1 on rows of tasks with no answer,
    and ``estimators_``, the fitted binary estimators.
    """

    def __init__(self, base_estimator: BaseClassifier | None = None) -> None:
        self.base_estimator = base_estimator

    def fit(
        self,
        tasks: object,
        workers: object,
        labels: object,
        *,
        n_tasks: int | None = None,
        n_workers: int | None = None,
        gold: object = None,
    ) -> MultiLabel:
        """``gold``, if given, is (n_tasks, n_labels) with 0/1 or -1 for unknown."""
        from .defaults import default_classifier

        y = np.asarray(labels)
        if y.ndim != 2:
            raise ValueError("labels must be an (n_answers, n_labels) 0/1 indicator matrix")
        if y.size and not np.isin(y, (0, 1)).all():
            raise ValueError("labels must hold only 0 and 1")
        t = as_index_array(tasks, "tasks")
        n_t = int(t.max()) + 1 if n_tasks is None and t.size else n_tasks
        g = None if gold is None else np.asarray(gold)
        if g is not None and g.shape != (n_t, y.shape[1]):
            raise ValueError(f"gold must have shape ({n_t}, {y.shape[1]})")
        base = self.base_estimator if self.base_estimator is not None else default_classifier()
        self.estimators_ = []
        probas, out = [], []
        for j in range(y.shape[1]):
            est = clone(base)
            est.fit(  # type: ignore[attr-defined]
                t,
                workers,
                y[:, j].astype(np.int64),
                n_labels=2,
                n_tasks=n_t,
                n_workers=n_workers,
                gold=None if g is None else g[:, j].astype(np.int64),
            )
            self.estimators_.append(est)
            probas.append(est.probas_[:, 1])  # type: ignore[attr-defined]
            out.append(est.labels_)  # type: ignore[attr-defined]
        self.probas_ = np.stack(probas, axis=1)
        self.labels_ = np.stack(out, axis=1)
        return self

    def fit_predict(
        self, tasks: object, workers: object, labels: object, **kw: object
    ) -> np.ndarray:
        return self.fit(tasks, workers, labels, **kw).labels_  # type: ignore[arg-type]


class MultiLabelAggregator:
    """Multi-label tasks: per-label Dawid-Skene behind the structured-aggregator contract.

    An answer is ``{"labels": [...]}``, a subset of ``labels`` (possibly empty); tasks
    need no ``context`` (None). Each label is its own binary problem, "does it apply?":
    worker ``w`` has one smoothed 2x2 confusion matrix per label (:class:`DawidSkene`
    with its Dirichlet prior of a moderately good worker) and each label has its prior.
    An answer that leaves a label out is a vote that it does not apply.

    ``aggregate`` returns ``response = {"labels": [...]}`` in the order of ``labels``
    (each decided label applies when its posterior exceeds one half; a tie leaves it out,
    "absent" being class 0); ``extra["label_confidence"] = {label: posterior that the
    decision on that label is right}`` for every label; ``confidence`` = the lowest of
    them, so a task is as sure as its least sure label; ``needs_review`` when that is
    under ``review_below``.

    ``params_`` (JSON): ``{"labels": [...], "n_workers": W, "priors": [[P(absent),
    P(present)] per label], "confusions": [per label [per worker [[P(0|0), P(1|0)],
    [P(0|1), P(1|1)]]]]}``. Workers unknown to the model (-1, or not seen by the fit)
    count with the mean confusion matrix; with no model at all every worker counts the
    same (a per-label majority vote).

    Dawid, A. P. and Skene, A. M. (1979). Applied Statistics 28(1), 20-28; per-label
    decomposition as in Nowak, S. and Rueger, S. (2010). How reliable are annotations
    via crowdsourcing. MIR'10.
    """

    def __init__(self, labels: list[str], review_below: float = 0.8,
                 base_estimator: BaseClassifier | None = None) -> None:
        if not labels or len(set(labels)) != len(labels):
            raise ValueError("labels must be a non-empty list of distinct names")
        self.labels = list(labels)
        self.review_below = review_below
        self.base_estimator = base_estimator
        self._index = {name: j for j, name in enumerate(self.labels)}
        self._conf: np.ndarray | None = None  # (L, W, 2, 2) log confusions
        self._default: np.ndarray | None = None  # (L, 2, 2) log mean confusion
        self._log_priors = np.full((len(self.labels), 2), np.log(0.5))

    def _row(self, answer: dict[str, Any]) -> np.ndarray:
        row = np.zeros(len(self.labels), dtype=np.int64)
        for name in answer.get("labels") or ():
            if name not in self._index:
                raise ValueError(f"unknown label {name!r}; expected one of {self.labels}")
            row[self._index[name]] = 1
        return row

    def fit(self, items: Sequence[Sequence[WorkerAnswer]], *, n_workers: int,
            contexts: Sequence[Any] | None = None) -> MultiLabelAggregator:
        check_items(items, n_workers, contexts)
        # answers of worker -1 (unknown) are pooled as one extra anonymous worker
        tasks = [t for t, answers in enumerate(items) for _ in answers]
        workers = [n_workers if w < 0 else w for answers in items for w, _ in answers]
        rows = [self._row(a) for answers in items for _, a in answers]
        y = np.array(rows, dtype=np.int64).reshape(len(rows), len(self.labels))
        base = self.base_estimator if self.base_estimator is not None else DawidSkene()
        model = MultiLabel(base).fit(np.array(tasks, dtype=np.int64), np.array(workers),
                                     y, n_tasks=len(items), n_workers=n_workers + 1)
        conf = np.stack([e.confusions_[:n_workers] for e in model.estimators_])  # type: ignore[attr-defined]
        priors = np.stack([e.priors_ for e in model.estimators_])  # type: ignore[attr-defined]
        self.params_ = {
            "labels": list(self.labels), "n_workers": int(n_workers),
            "priors": priors.tolist(), "confusions": conf.tolist(),
        }
        self.load_params(self.params_)
        present = model.probas_  # (T, L) P(label applies)
        self.results_ = [self._result(np.stack([1.0 - p, p], axis=1)) for p in present]
        return self

    def load_params(self, params: dict[str, Any]) -> MultiLabelAggregator:
        if list(params["labels"]) != self.labels:
            raise ValueError("params were fitted for other labels")
        conf = np.asarray(params["confusions"], dtype=np.float64).reshape(
            len(self.labels), int(params["n_workers"]), 2, 2)
        # log once here, so that aggregate only adds
        self._conf = np.log(np.maximum(conf, _TINY))
        mean = conf.mean(axis=1) if conf.shape[1] else np.full((len(self.labels), 2, 2), 0.5)
        self._default = np.log(np.maximum(mean, _TINY))
        self._log_priors = np.log(np.maximum(np.asarray(params["priors"], dtype=np.float64), _TINY))
        return self

    def aggregate(self, answers: Sequence[WorkerAnswer], context: Any = None) -> TaskResult:
        logp = self._log_priors.copy()  # (L, 2)
        if answers and self._conf is None:
            votes = np.sum([self._row(a) for _, a in answers], axis=0)
            logp += np.log(0.75) * np.stack([len(answers) - votes, votes], axis=1)
            logp += np.log(0.25) * np.stack([votes, len(answers) - votes], axis=1)
        elif answers:
            assert self._conf is not None and self._default is not None
            lab = np.arange(len(self.labels))
            for worker, answer in answers:
                row = self._row(answer)
                known = 0 <= worker < self._conf.shape[1]
                table = self._conf[:, worker] if known else self._default  # (L, 2, 2)
                logp += table[lab, :, row]
        # max-subtraction before exp: many answers give very negative sums
        logp -= logp.max(axis=1, keepdims=True)
        post = np.exp(logp)
        return self._result(post / post.sum(axis=1, keepdims=True))

    def _result(self, post: np.ndarray) -> TaskResult:
        """TaskResult from (L, 2) posteriors [P(absent), P(present)] per label."""
        decided = best_labels(post.T)  # ties: absent (class 0)
        conf = post[np.arange(len(self.labels)), decided]
        chosen = [name for name, d in zip(self.labels, decided, strict=True) if d == 1]
        confidence = float(conf.min())
        return TaskResult(
            response={"labels": chosen},
            confidence=confidence,
            needs_review=confidence < self.review_below,
            extra={"label_confidence": {n: float(c) for n, c in zip(self.labels, conf, strict=True)}},
        )


def answer_score(answer: dict[str, Any], response: dict[str, Any], context: Any = None) -> float:
    """Jaccard similarity of the answer's label set with the response's (1.0 when both
    are empty)."""
    a, b = set(answer.get("labels") or ()), set(response.get("labels") or ())
    union = a | b
    return len(a & b) / len(union) if union else 1.0
