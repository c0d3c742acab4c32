"""Keypoints: reliability-weighted consensus skeletons per image, worker reliability per project.

Answers are ``{"instances": [{"keypoints": [[x, y, v], ...]}]}``: one ``[x, y, v]`` per
keypoint of the spec, in image pixels, ``v`` COCO's visibility (0 not labelled, 1 labelled
but hidden, 2 visible). Two instances compare by object keypoint similarity (OKS, COCO's
keypoint measure), made symmetric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._regions import ObjectAggregator
from .boxes import _weighted_median

#: COCO's per-keypoint sigma is 0.025 (eyes) to 0.107 (hips); a keypoint the spec gives none
#: gets this one.
DEFAULT_SIGMA = 0.05
#: The smallest object area OKS scales by, in square pixels (COCO's "small" objects are under
#: 32²): an instance of one or two points has no extent of its own.
MIN_AREA = 32.0 * 32.0
#: A keypoint's placement within this many ``k * s`` of the median counts towards the mean
#: (``exp(-d² / 2s²k²) >= exp(-2)``, an OKS term of 0.14 or more); further ones are outliers.
INLIER_RADIUS = 2.0


@dataclass(eq=False)
class Instance:
    """One object's keypoints: ``points`` a (k, 3) array of x, y, visibility."""

    points: np.ndarray
    #: Each keypoint's confidence, on a consensus instance.
    confidence: list[float] = field(default_factory=list)

    @property
    def labelled(self) -> np.ndarray:
        return self.points[:, 2] > 0

    @property
    def area(self) -> float:
        """The area of the labelled keypoints' bounding box, at least MIN_AREA."""
        p = self.points[self.labelled, :2]
        if len(p) == 0:
            return MIN_AREA
        w, h = p.max(axis=0) - p.min(axis=0)
        return max(float(w * h), MIN_AREA)


def as_instance(raw: Any) -> Instance:
    if isinstance(raw, Instance):
        return raw
    if isinstance(raw, dict):
        raw = raw["keypoints"]
    points = np.asarray(raw, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(points).all():
        raise ValueError("keypoints must be finite")
    return Instance(points)


def oks(a: Any, b: Any, sigmas: Sequence[float] | np.ndarray) -> float:
    """Object keypoint similarity of two instances, symmetric: over the keypoints either
    labels, the mean of ``exp(-d² / (2 s² k²))`` where both label it (0 where only one
    does), ``k = 2 sigma`` the keypoint's tolerance and ``s²`` the mean of the two
    instances' areas (their labelled keypoints' bounding boxes, at least MIN_AREA).
    Two instances that label nothing are the same (1)."""
    pa, pb = as_instance(a), as_instance(b)
    la, lb = pa.labelled, pb.labelled
    either = la | lb
    if not either.any():
        return 1.0
    both = la & lb
    k = 2.0 * np.asarray(sigmas, dtype=np.float64)
    s2 = (pa.area + pb.area) / 2.0
    d2 = np.sum((pa.points[:, :2] - pb.points[:, :2]) ** 2, axis=1)
    terms = np.exp(-d2 / (2.0 * s2 * k**2))
    return float(np.sum(terms[both]) / np.count_nonzero(either))


def merge_instances(members: list[Instance], weights: list[float], sigmas: np.ndarray,
                    context: Any = None) -> tuple[Instance, list[float]]:
    """The consensus of instances thought to be one object, and each keypoint's confidence.

    A keypoint is labelled when members holding at least half of the weight label it. Its
    place is a robust mean: the weighted median of the placements (each coordinate), then
    the weighted mean of the placements within ``INLIER_RADIUS * k * s`` of it (outliers
    left out, ``s²`` the members' median area). Its visibility is 2 when those labelling it
    visible hold at least half of the labelling weight, else 1. Its confidence: the share of
    the weight that labelled it and placed it within the radius (or, unlabelled, the share
    that left it out)."""
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    stack = np.stack([m.points for m in members])  # (members, k, 3)
    labelled = stack[:, :, 2] > 0
    s = math.sqrt(float(np.median([m.area for m in members])))
    out = np.zeros((stack.shape[1], 3))
    confidence = []
    for j in range(stack.shape[1]):
        on = labelled[:, j]
        share = float(w[on].sum()) / total
        if share < 0.5 - 1e-12:
            confidence.append(1.0 - share)
            continue
        xy, ww = stack[on, j, :2], w[on]
        centre = np.array([_weighted_median(xy[:, 0].tolist(), ww.tolist()),
                           _weighted_median(xy[:, 1].tolist(), ww.tolist())])
        near = np.hypot(*(xy - centre).T) <= INLIER_RADIUS * 2.0 * sigmas[j] * s
        if near.any():
            centre = np.average(xy[near], axis=0, weights=ww[near]) if ww[near].sum() > 0 else xy[near].mean(axis=0)
        if isinstance(context, dict) and "width" in context and "height" in context:
            centre = np.clip(centre, 0.0, [float(context["width"]), float(context["height"])])
        visible = float(ww[stack[on, j, 2] == 2].sum()) >= float(ww.sum()) / 2.0 - 1e-12
        out[j] = [round(float(centre[0]), 1), round(float(centre[1]), 1), 2.0 if visible else 1.0]
        confidence.append(float(ww[near].sum()) / total)
    return Instance(out), confidence


def _written(instance: Instance) -> list[list[float | int]]:
    return [[float(x), float(y), int(v)] if v > 0 else [0, 0, 0] for x, y, v in instance.points.tolist()]


class KeypointAggregator(ObjectAggregator[Instance]):
    """Consensus keypoint instances weighted by each annotator's learned reliability.

    Per image, instances are clustered by OKS (``min_oks``), one per annotator, the most
    reliable annotators first; a cluster supported by at least ``min_support`` of the
    reliability weight becomes one instance, keypoint by keypoint a robust weighted mean
    (:func:`merge_instances`). ``sigmas``: each keypoint's OKS sigma (DEFAULT_SIGMA each by
    default, ``n_keypoints`` of them). Confidence, reliability and ``params_`` as
    :class:`~qistas.quality._regions.ObjectAggregator` documents, similarity being OKS;
    ``extra["keypoints"]`` holds each instance's per-keypoint confidences.

    OKS is COCO's keypoint similarity (Lin et al., 2014, "Microsoft COCO: Common objects in
    context", ECCV; Ruggero Ronchi and Perona, 2017, "Benchmarking and error diagnosis in
    multi-instance pose estimation", ICCV); the per-keypoint median-then-inlier-mean is a
    one-step robust location estimate (Huber, 1981, "Robust Statistics", ch. 3).
    """

    key = "instances"

    def __init__(
        self,
        n_keypoints: int = 1,
        *,
        sigmas: Sequence[float] | None = None,
        min_oks: float = 0.5,
        min_support: float = 0.5,
        prior_answers: float = 5.0,
        review_below: float = 0.5,
        n_iter: int = 20,
        tol: float = 1e-4,
    ) -> None:
        self.n_keypoints = n_keypoints
        self.sigmas = sigmas
        self.min_oks = min_oks
        self.min_support = min_support
        self.prior_answers = prior_answers
        self.review_below = review_below
        self.n_iter = n_iter
        self.tol = tol
        self.labels = None

    @property
    def least(self) -> float:
        return self.min_oks

    def _sigmas(self) -> np.ndarray:
        if self.sigmas is None:
            return np.full(self.n_keypoints, DEFAULT_SIGMA)
        return np.asarray(self.sigmas, dtype=np.float64)

    def _parse(self, raw: Any) -> Instance:
        found = as_instance(raw)
        if len(found.points) != self.n_keypoints:
            raise ValueError(f"an instance has {len(found.points)} keypoints, not {self.n_keypoints}")
        return found

    def _label(self, item: Instance) -> Any:
        return None

    def similarity(self, a: Instance, b: Instance) -> float:
        return oks(a, b, self._sigmas())

    def _merge(self, members: list[Instance], weights: list[float], context: Any) -> Instance:
        merged, confidence = merge_instances(members, weights, self._sigmas(), context)
        merged.confidence = confidence
        return merged

    def _extra(self, consensus: list[Instance]) -> dict[str, Any]:
        return {"keypoints": [i.confidence for i in consensus]}

    def _write(self, item: Instance, confidence: float | None) -> dict[str, Any]:
        written: dict[str, Any] = {"keypoints": _written(item)}
        if confidence is not None:
            written["confidence"] = confidence
        return written

    def _order(self, written: dict[str, Any]) -> tuple[Any, ...]:
        placed = [(p[1], p[0]) for p in written["keypoints"] if p[2] > 0]
        return min(placed) if placed else (0.0, 0.0)


def keypoints_match(answer: Any, gold: Any, *, n_keypoints: int, sigmas: Sequence[float] | None = None,
                    min_oks: float = 0.5) -> bool:
    """True when ``answer`` has exactly the gold instances, matched one to one at OKS >= ``min_oks``."""
    return KeypointAggregator(n_keypoints, sigmas=sigmas).matches(answer, gold, min_oks)


def answer_score(answer: Any, response: Any, *, n_keypoints: int, sigmas: Sequence[float] | None = None) -> float:
    """OKS-weighted F1 of ``answer`` against the consensus ``response``, in [0, 1]."""
    return KeypointAggregator(n_keypoints, sigmas=sigmas).score(answer, response)
