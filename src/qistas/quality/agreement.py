"""Inter-annotator agreement: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha.

Missing values: ``-1`` in integer label arrays, ``NaN`` in float arrays.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_index_array


def cohen_kappa(
    a: object, b: object, *, n_labels: int | None = None, weights: str | None = None
) -> float:
    """Cohen's kappa of two annotators over the same items.

    ``a[i]`` and ``b[i]`` are label indices for item ``i``; items where either is -1 are
    skipped. ``weights``: None (nominal), "linear" or "quadratic" (ordinal labels).
    Returns NaN when chance agreement is total (both always used one and the same label).

    Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and
    Psychological Measurement 20(1).
    """
    x, y = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("a and b must be 1-d arrays of equal length")
    keep = (x >= 0) & (y >= 0)
    x, y = x[keep], y[keep]
    if x.size == 0:
        raise ValueError("no item was labelled by both annotators")
    k = int(max(x.max(), y.max())) + 1 if n_labels is None else int(n_labels)
    table = np.bincount(x * k + y, minlength=k * k).reshape(k, k) / x.size
    idx = np.arange(k)
    if weights is None:
        disagree = (idx[:, None] != idx[None, :]).astype(float)
    elif weights == "linear":
        disagree = np.abs(idx[:, None] - idx[None, :]).astype(float)
    elif weights == "quadratic":
        disagree = (idx[:, None] - idx[None, :]).astype(float) ** 2
    else:
        raise ValueError("weights must be None, 'linear' or 'quadratic'")
    expected = np.outer(table.sum(axis=1), table.sum(axis=0))
    d_exp = float(np.sum(disagree * expected))
    if d_exp == 0:
        return float("nan")
    return 1.0 - float(np.sum(disagree * table)) / d_exp


def rating_table(
    tasks: object, labels: object, *, n_labels: int | None = None, n_tasks: int | None = None
) -> np.ndarray:
    """(n_tasks, n_labels) counts of how many annotators gave each label to each task."""
    t, lab = as_index_array(tasks, "tasks"), as_index_array(labels, "labels")
    if t.shape != lab.shape:
        raise ValueError("tasks and labels must have equal length")
    n_t = (int(t.max()) + 1 if t.size else 0) if n_tasks is None else int(n_tasks)
    k = (int(lab.max()) + 1 if lab.size else 0) if n_labels is None else int(n_labels)
    return np.bincount(t * k + lab, minlength=n_t * k).reshape(n_t, k)


def fleiss_kappa(table: object) -> float:
    """Fleiss' kappa from an (n_items, n_categories) table of rating counts.

    Items may have different numbers of ratings: each item's agreement uses its own
    count, items with fewer than two ratings are left out, and category shares pool all
    ratings of the items kept. With equal counts this is exactly Fleiss (1971).

    Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
    Psychological Bulletin 76(5).
    """
    x = np.asarray(table, dtype=np.float64)
    if x.ndim != 2 or np.any(x < 0):
        raise ValueError("table must be a 2-d array of non-negative counts")
    n = x.sum(axis=1)
    x, n = x[n >= 2], n[n >= 2]
    if x.shape[0] == 0:
        raise ValueError("no item has two or more ratings")
    p_item = (np.sum(x * x, axis=1) - n) / (n * (n - 1))
    p_cat = x.sum(axis=0) / n.sum()
    p_exp = float(np.sum(p_cat**2))
    if p_exp == 1.0:
        return float("nan")
    return (float(p_item.mean()) - p_exp) / (1.0 - p_exp)


def _delta2(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    v = values[:, None], values[None, :]
    if level == "nominal":
        return (v[0] != v[1]).astype(float)
    if level == "interval":
        return (v[0] - v[1]) ** 2
    if level == "ratio":
        s = v[0] + v[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(s == 0, 0.0, ((v[0] - v[1]) / s) ** 2)
        return d
    if level == "ordinal":
        # sum of the frequencies of the ranks from c to k, less half of the two ends
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        i = np.arange(values.size)
        lo, hi = np.minimum(i[:, None], i[None, :]), np.maximum(i[:, None], i[None, :])
        return (cum[hi + 1] - cum[lo] - (n_c[lo] + n_c[hi]) / 2.0) ** 2
    raise ValueError("level must be 'nominal', 'ordinal', 'interval' or 'ratio'")


def krippendorff_alpha(data: object, *, level: str = "nominal") -> float:
    """Krippendorff's alpha for an (n_coders, n_units) array with NaN for missing values.

    Units with fewer than two values are not pairable and are left out. ``level`` picks
    the difference function: "nominal", "ordinal" (ranks of the values used), "interval"
    or "ratio".

    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School
    for Communication, University of Pennsylvania.
    """
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("data must be (n_coders, n_units)")
    present = ~np.isnan(x)
    values = np.unique(x[present])
    if values.size == 0:
        raise ValueError("no values given")
    m = present.sum(axis=0)
    keep = m >= 2
    if not np.any(keep):
        raise ValueError("no unit has two or more values")
    xs, ps, m = x[:, keep], present[:, keep], m[keep]
    # per unit counts of each value: (units, values)
    codes = np.searchsorted(values, np.where(ps, xs, values[0]))
    u_idx = np.broadcast_to(np.arange(xs.shape[1]), xs.shape)
    counts = np.zeros((xs.shape[1], values.size))
    np.add.at(counts, (u_idx[ps], codes[ps]), 1.0)
    # coincidence matrix: pairs within a unit, each unit weighted 1 / (m_u - 1)
    scaled = counts / (m - 1)[:, None]
    o = scaled.T @ counts - np.diag(scaled.sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d2 = _delta2(values, n_c, level)
    d_obs = float(np.sum(o * d2)) / n
    d_exp = float(np.sum(np.outer(n_c, n_c) * d2)) / (n * (n - 1))
    if d_exp == 0:
        return float("nan")
    return 1.0 - d_obs / d_exp


def answers_to_reliability_data(
    tasks: object,
    workers: object,
    values: object,
    *,
    n_tasks: int | None = None,
    n_workers: int | None = None,
) -> np.ndarray:
    """(n_workers, n_tasks) float array with NaN where a worker did not answer a task.

    For repeated (worker, task) pairs the last answer is kept.
    """
    t, w = as_index_array(tasks, "tasks"), as_index_array(workers, "workers")
    v = np.asarray(values, dtype=np.float64)
    if not (t.shape == w.shape == v.shape):
        raise ValueError("tasks, workers and values must have equal length")
    n_t = (int(t.max()) + 1 if t.size else 0) if n_tasks is None else int(n_tasks)
    n_w = (int(w.max()) + 1 if w.size else 0) if n_workers is None else int(n_workers)
    out = np.full((n_w, n_t), np.nan)
    out[w, t] = v
    return out
