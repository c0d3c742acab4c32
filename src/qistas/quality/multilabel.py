"""Multi-label classification as one binary truth-inference problem per label."""

from __future__ import annotations

import numpy as np

from ._base import BaseClassifier, BaseEstimator, clone
from ._validation import as_index_array


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
