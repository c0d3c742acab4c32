"""Ranking tasks: aggregate annotators' orders of a task's responses (Borda count)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._base import BaseEstimator
from ._validation import as_index_array


def borda_scores(orders: Sequence[Sequence[int]], n_items: int | None = None) -> np.ndarray:
    """Mean Borda score per item, in [0, 1] (1 = ranked first by everyone).

    Each order lists item indices best first. In an order of the ``m`` items, position
    ``r`` earns ``(m - 1 - r) / (m - 1)``; items an annotator left out share the points
    of the remaining positions equally (a partial order says nothing about them).
    """
    if len(orders) == 0:
        raise ValueError("no orders given")
    clean = [as_index_array(list(o), "order") for o in orders]
    for o in clean:
        if np.unique(o).size != o.size:
            raise ValueError("an order lists an item twice")
    found = max((int(o.max()) + 1 for o in clean if o.size), default=0)
    m = found if n_items is None else int(n_items)
    if m < found:
        raise ValueError(f"n_items={n_items} but item {found - 1} was ranked")
    if m < 2:
        return np.ones(m)
    total = np.zeros(m)
    for o in clean:
        pts = np.empty(m)
        ranked = (m - 1 - np.arange(o.size)) / (m - 1)
        rest = np.setdiff1d(np.arange(m), o)
        pts[o] = ranked
        if rest.size:
            # positions o.size .. m-1 are left for the unranked items
            pts[rest] = np.mean((m - 1 - np.arange(o.size, m)) / (m - 1))
        total += pts
    return total / len(clean)


class Borda(BaseEstimator):
    """Borda count per task.

    ``fit(tasks, orders, n_items=None)``: ``tasks[i]`` is the task of ``orders[i]``, an
    annotator's order of that task's items (best first). ``n_items`` is an int or one
    int per task. Fitted: ``scores_`` (list of arrays, one per task, see
    :func:`borda_scores`) and ``orders_`` (consensus orders, ties to the lower index).
    Tasks without any order get empty arrays.
    """

    def __init__(self) -> None:
        pass

    def fit(
        self, tasks: object, orders: Sequence[Sequence[int]], *, n_items: object = None
    ) -> Borda:
        t = as_index_array(tasks, "tasks")
        if t.size == 0:
            raise ValueError("no orders given")
        if len(orders) != t.size:
            raise ValueError("tasks and orders must have equal length")
        n_tasks = int(t.max()) + 1
        per_task: list[list[Sequence[int]]] = [[] for _ in range(n_tasks)]
        for task, order in zip(t.tolist(), orders, strict=True):
            per_task[task].append(order)
        sizes = np.broadcast_to(np.asarray(n_items if n_items is not None else -1), (n_tasks,))
        self.scores_, self.orders_ = [], []
        for task, group in enumerate(per_task):
            if not group:
                self.scores_.append(np.zeros(0))
                self.orders_.append(np.zeros(0, dtype=np.int64))
                continue
            size = int(sizes[task])
            s = borda_scores(group, None if size < 0 else size)
            self.scores_.append(s)
            self.orders_.append(np.argsort(-s, kind="stable"))
        return self
