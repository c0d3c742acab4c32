"""Consensus for structured answers on one task: text spans (NER) and bounding boxes.

Each function takes one task's annotations, a list with one entry per annotator, each a
list of spans ``(start, end, label)`` (end exclusive) or boxes ``(x, y, w, h, label)``;
dicts with those keys work too. It matches the annotators' items, keeps the groups that
enough annotators support (by default a strict majority) and reports an agreement in
[0, 1]: the mean pairwise F1 between annotators under the same matching rule (two
annotators who both marked nothing agree fully; NaN with fewer than two annotators).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

Span = tuple[int, int, Any]
Box = tuple[float, float, float, float, Any]


@dataclass(frozen=True)
class Consensus:
    """``items``: consensus spans or boxes; ``support[i]``: share of annotators who marked
    ``items[i]``; ``agreement``: mean pairwise F1 between annotators."""

    items: list[Any]
    support: list[float]
    agreement: float


def _as_span(s: Any) -> Span:
    if isinstance(s, dict):
        s = (s["start"], s["end"], s.get("label"))
    start, end, label = s
    if end < start:
        raise ValueError(f"span end {end} before start {start}")
    return int(start), int(end), label


def _as_box(b: Any) -> Box:
    if isinstance(b, dict):
        b = (b["x"], b["y"], b["w"], b["h"], b.get("label"))
    x, y, w, h, label = b
    if w < 0 or h < 0:
        raise ValueError("box width and height must be non-negative")
    return float(x), float(y), float(w), float(h), label


def span_overlap(a: Span, b: Span) -> float:
    """Intersection over union of two spans' character ranges (0 if labels differ)."""
    if a[2] != b[2]:
        return 0.0
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union == 0:
        return 1.0 if a[:2] == b[:2] else 0.0
    return inter / union


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 if labels differ)."""
    if a[4] != b[4]:
        return 0.0
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    if union <= 0:
        return 1.0 if a[:4] == b[:4] else 0.0
    return inter / union


def _match_count(xs: list, ys: list, sim: Callable[[Any, Any], float], threshold: float) -> int:
    """Greedy one-to-one matching, most similar pairs first; pairs below threshold don't
    match."""
    pairs = sorted(
        ((sim(x, y), i, j) for i, x in enumerate(xs) for j, y in enumerate(ys)),
        key=lambda p: -p[0],
    )
    used_x, used_y, n = set(), set(), 0
    for s, i, j in pairs:
        if s < threshold:
            break
        if i not in used_x and j not in used_y:
            used_x.add(i)
            used_y.add(j)
            n += 1
    return n


def _pairwise_f1(sets: list[list], sim: Callable, threshold: float) -> float:
    if len(sets) < 2:
        return float("nan")
    scores = []
    for xs, ys in combinations(sets, 2):
        if not xs and not ys:
            scores.append(1.0)
            continue
        m = _match_count(xs, ys, sim, threshold)
        scores.append(2.0 * m / (len(xs) + len(ys)))
    return sum(scores) / len(scores)


def _cluster(sets: list[list], sim: Callable, threshold: float) -> list[list[tuple[int, Any]]]:
    """Greedy clustering: each item joins the most similar cluster that has no item of the
    same annotator yet and whose first member it matches at ``threshold``."""
    clusters: list[list[tuple[int, Any]]] = []
    for ann, items in enumerate(sets):
        for item in items:
            best, best_sim = None, threshold
            for c in clusters:
                if any(a == ann for a, _ in c):
                    continue
                s = sim(c[0][1], item)
                if s >= best_sim and (best is None or s > best_sim):
                    best, best_sim = c, s
            if best is None:
                clusters.append([(ann, item)])
            else:
                best.append((ann, item))
    return clusters


def _needed(n_annotators: int, min_votes: int | None) -> int:
    return n_annotators // 2 + 1 if min_votes is None else int(min_votes)


def span_consensus(
    annotations: Sequence[Sequence[Any]],
    *,
    match: str = "exact",
    min_overlap: float = 0.5,
    min_votes: int | None = None,
) -> Consensus:
    """Consensus spans of one text.

    ``match="exact"``: spans count as the same only with equal start, end and label.
    ``match="overlap"``: same label and character IoU >= ``min_overlap``; the consensus
    boundaries are the most common (start, end) of the group (earliest on a tie).
    """
    if match not in ("exact", "overlap"):
        raise ValueError("match must be 'exact' or 'overlap'")
    sets = [
        sorted({_as_span(s) for s in ann}, key=lambda s: (s[0], s[1], str(s[2])))
        for ann in annotations
    ]
    n = len(sets)
    if match == "exact":

        def sim(a: Span, b: Span) -> float:
            return 1.0 if a == b else 0.0

        threshold = 1.0
    else:
        sim, threshold = span_overlap, float(min_overlap)
    agreement = _pairwise_f1(sets, sim, threshold)
    need = _needed(n, min_votes)
    items, support = [], []
    for c in _cluster(sets, sim, threshold):
        if len(c) >= need:
            votes = Counter((s[0], s[1]) for _, s in c)
            top = max(votes.values())
            start, end = min(k for k, v in votes.items() if v == top)
            items.append((start, end, c[0][1][2]))
            support.append(len(c) / n)
    order = sorted(range(len(items)), key=lambda i: (items[i][0], items[i][1]))
    return Consensus([items[i] for i in order], [support[i] for i in order], agreement)


def box_consensus(
    annotations: Sequence[Sequence[Any]],
    *,
    iou_threshold: float = 0.5,
    min_votes: int | None = None,
) -> Consensus:
    """Consensus boxes of one image: boxes of the same label with IoU >= ``iou_threshold``
    are grouped (one per annotator); a group's box is the mean of its members."""
    sets = [[_as_box(b) for b in ann] for ann in annotations]
    n = len(sets)
    thr = float(iou_threshold)
    agreement = _pairwise_f1(sets, box_iou, thr)
    need = _needed(n, min_votes)
    items, support = [], []
    for c in _cluster(sets, box_iou, thr):
        if len(c) >= need:
            k = len(c)
            mean = [sum(b[i] for _, b in c) / k for i in range(4)]
            items.append((*mean, c[0][1][4]))
            support.append(k / n)
    return Consensus(items, support, agreement)
