"""Polygons: reliability-weighted consensus masks per image, worker reliability per project.

Answers are ``{"polygons": [{"points": [[x, y], ...], "label"}]}`` in image pixels; a task's
``context`` is ``None`` or ``{"width": w, "height": h}`` (consensus polygons are then clipped
to the image). Polygons are compared as masks: each is rasterised with the even-odd rule on a
grid of square cells over the two polygons' bounding box, ``resolution`` cells along its
longer side, a cell being inside when its centre is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._regions import ObjectAggregator, match

_EPS = 1e-12


@dataclass(eq=False)
class Polygon:
    """A labelled polygon: ``points`` an (n, 2) array of x, y in pixels, closed implicitly."""

    points: np.ndarray
    label: Any
    box: tuple[float, float, float, float] = field(init=False)  # x0, y0, x1, y1

    def __post_init__(self) -> None:
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)
        self.box = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def as_polygon(raw: Any) -> Polygon:
    if isinstance(raw, Polygon):
        return raw
    if isinstance(raw, dict):
        points, label = raw["points"], raw.get("label")
    else:
        points, label = raw
    array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(array) < 3 or not np.isfinite(array).all():
        raise ValueError("a polygon needs at least 3 finite points")
    return Polygon(array, label)


def polygon_area(points: Any) -> float:
    """The area a polygon encloses (shoelace formula; a self-crossing one counts signed parts)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def rasterise(points: np.ndarray, origin: tuple[float, float], cell: float, shape: tuple[int, int]) -> np.ndarray:
    """The cells of a ``shape`` (rows, cols) grid, with corner ``origin`` and square cells of
    side ``cell``, whose centres a polygon holds (even-odd rule).

    A scanline fill of all rows at once: the edges crossing each row's centre line, their
    crossings counted left of each cell centre by one ``searchsorted`` (each row's crossings
    are shifted into a range of their own, so one sorted array serves every row)."""
    rows, cols = shape
    u = (points[:, 0] - origin[0]) / cell  # in cells
    v = (points[:, 1] - origin[1]) / cell
    u2, v2 = np.roll(u, -1), np.roll(v, -1)
    centres = np.arange(rows) + 0.5
    # an edge crosses a row when exactly one of its ends is at or below the row's centre
    row, edge = np.nonzero((v[None, :] <= centres[:, None]) != (v2[None, :] <= centres[:, None]))
    x = u[edge] + (centres[row] - v[edge]) * (u2 - u)[edge] / (v2 - v)[edge]
    stride = cols + 4.0
    keys = np.sort(np.clip(x, -1.0, cols + 1.0) + row * stride)
    queries = np.arange(cols)[None, :] + 0.5 + np.arange(rows)[:, None] * stride
    before = np.searchsorted(keys, queries) - np.searchsorted(keys, np.arange(rows) * stride - 2.0)[:, None]
    return (before % 2) == 1


def _grid(boxes: list[tuple[float, float, float, float]], resolution: int
          ) -> tuple[tuple[float, float], float, tuple[int, int]]:
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    cell = max(x1 - x0, y1 - y0, _EPS) / resolution
    shape = (max(1, math.ceil((y1 - y0) / cell - 1e-9)), max(1, math.ceil((x1 - x0) / cell - 1e-9)))
    return (x0, y0), cell, shape


def polygon_iou(a: Any, b: Any, *, resolution: int = 100) -> float:
    """Mask intersection over union of two polygons (0 if their labels differ), on a grid of
    ``resolution`` cells along the longer side of their joint bounding box."""
    pa, pb = as_polygon(a), as_polygon(b)
    if pa.label != pb.label:
        return 0.0
    if pa.box[0] >= pb.box[2] or pb.box[0] >= pa.box[2] or pa.box[1] >= pb.box[3] or pb.box[1] >= pa.box[3]:
        return 0.0
    origin, cell, shape = _grid([pa.box, pb.box], resolution)
    ma, mb = rasterise(pa.points, origin, cell, shape), rasterise(pb.points, origin, cell, shape)
    union = np.count_nonzero(ma | mb)
    return float(np.count_nonzero(ma & mb) / union) if union else 0.0


# --- from a mask back to a polygon -------------------------------------------------------------

_RIGHT = {(1, 0): (0, 1), (0, 1): (-1, 0), (-1, 0): (0, -1), (0, -1): (1, 0)}  # y points down


def _rings(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """The boundaries of a mask's regions as closed rings of cell corners (x = column,
    y = row), each walked with its inside on the right: outer rings have a positive shoelace
    sum, holes a negative one. Where two cells touch only at a corner the walk turns right,
    keeping to the cell it follows (4-connected regions)."""
    m = np.pad(mask, 1)
    inside = m[1:-1, 1:-1]
    r, c = np.nonzero(inside)
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    sides = (
        (~m[:-2, 1:-1], (0, 0), (1, 0)),   # top: left to right
        (~m[1:-1, 2:], (1, 0), (0, 1)),    # right: downwards
        (~m[2:, 1:-1], (1, 1), (-1, 0)),   # bottom: right to left
        (~m[1:-1, :-2], (0, 1), (0, -1)),  # left: upwards
    )
    for open_side, (dx, dy), step in sides:
        keep = open_side[r, c]
        for x, y in zip((c[keep] + dx).tolist(), (r[keep] + dy).tolist(), strict=True):
            out.setdefault((x, y), []).append(step)
    rings = []
    while out:
        # the top-left corner left: a corner of one cell only, never where two regions touch
        start = min(out, key=lambda p: (p[1], p[0]))
        here, heading = start, None
        ring = []
        while True:
            steps = out[here]
            if heading is None or len(steps) == 1:
                step = steps[0]
            else:  # a corner where two regions touch: the right turn, else straight on
                right = _RIGHT[heading]
                step = right if right in steps else (heading if heading in steps else steps[0])
            steps.remove(step)
            if not steps:
                del out[here]
            ring.append(here)
            here, heading = (here[0] + step[0], here[1] + step[1]), step
            if here == start:
                break
        rings.append(ring)
    return rings


def _shoelace(p: np.ndarray) -> float:
    return float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))) / 2.0


def _simplify(chain: np.ndarray, tolerance: float) -> list[int]:
    """Douglas–Peucker (1973) on an open chain: the indices of the points kept."""
    keep = [0, len(chain) - 1]
    stack = [(0, len(chain) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = chain[i], chain[j]
        seg = b - a
        length = math.hypot(seg[0], seg[1])
        rel = chain[i + 1:j] - a
        dist = (np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / length if length > _EPS
                else np.hypot(rel[:, 0], rel[:, 1]))
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            keep.append(i + 1 + k)
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return sorted(set(keep))


def outline(mask: np.ndarray, tolerance: float = 0.5) -> np.ndarray | None:
    """The largest region of a mask as a polygon, in cell units (x = column, y = row): its
    outer boundary through the midpoints of the boundary's cell edges (on the contour of
    the cell centres, as marching squares draws it), simplified by Douglas–Peucker within
    ``tolerance`` cells. Holes are filled. None when the mask is empty."""
    best, best_area = None, 0.0
    for ring in _rings(mask):
        corners = np.array(ring, dtype=np.float64)
        area = _shoelace(corners)
        if area > best_area:
            best, best_area = corners, area
    if best is None:
        return None
    mids = (best + np.roll(best, -1, axis=0)) / 2.0
    far = int(np.argmax(np.hypot(*(mids - mids[0]).T)))
    first = _simplify(mids[: far + 1], tolerance)
    second = _simplify(np.vstack([mids[far:], mids[:1]]), tolerance)
    kept = first + [far + k for k in second[1:-1]]
    return mids[kept]


def merge_polygons(members: list[Polygon], weights: list[float], *, resolution: int = 100,
                   context: Any = None) -> Polygon:
    """The consensus of polygons thought to be one object: the cells that members holding at
    least half of the weight cover (a weighted per-pixel majority), outlined. Clipped to the
    image when ``context`` gives its size; the first (most reliable) member when the vote
    leaves no region of three points. A cluster of one polygon, or of copies of one (a
    prediction everybody accepted), is that polygon."""
    first = members[0].points
    if all(m.points.shape == first.shape and np.array_equal(m.points, first) for m in members[1:]):
        return members[0]
    origin, cell, shape = _grid([p.box for p in members], resolution)
    votes = np.zeros(shape)
    for polygon, w in zip(members, weights, strict=True):
        votes += w * rasterise(polygon.points, origin, cell, shape)
    ring = outline(votes >= sum(weights) / 2.0 - _EPS)
    if ring is None or len(ring) < 3:
        return members[0]
    points = ring * cell + np.array(origin)
    if isinstance(context, dict) and "width" in context and "height" in context:
        points = np.clip(points, 0.0, [float(context["width"]), float(context["height"])])
    points = np.round(points, 1)
    if polygon_area(points) <= 0:
        return members[0]
    return Polygon(points, members[0].label)


def polygons_match(answer: Any, gold: Any, *, min_iou: float = 0.5) -> bool:
    """True when ``answer`` has exactly the gold polygons: a one-to-one matching of
    same-label polygons pairs every gold polygon with one of the answer's at mask IoU >=
    ``min_iou``, and the answer has none left over."""
    return PolygonAggregator().matches(answer, gold, min_iou)


def answer_score(answer: Any, response: Any, context: Any = None) -> float:
    """IoU-weighted F1 of ``answer`` against the consensus ``response``, in [0, 1]: polygons
    matched one to one (same label, IoU >= 0.5), each match counting its IoU. Two empty
    answers score 1."""
    return PolygonAggregator().score(answer, response)


class PolygonAggregator(ObjectAggregator[Polygon]):
    """Consensus polygons weighted by each annotator's learned reliability.

    Per image, polygons of the same label are clustered by mask IoU (``min_iou``), one per
    annotator, the most reliable annotators first; a cluster supported by at least
    ``min_support`` of the reliability weight becomes one polygon: the weighted per-pixel
    majority of its members' masks (the cells covered by members holding at least half the
    cluster's weight), outlined at ``resolution`` cells along the cluster's longer side.
    Confidence, reliability and ``params_`` as :class:`~qistas.quality._regions.ObjectAggregator`
    documents, similarity being mask IoU.

    Mask majority voting is the classic fusion of several segmentations (Warfield, Zou and
    Wells, 2004, "Simultaneous truth and performance level estimation (STAPLE)", IEEE TMI,
    whose first iteration it is); IoU clustering of crowd instances as in Lin et al., 2014,
    "Microsoft COCO: Common objects in context", ECCV (section 3.3); outlines simplified by
    Douglas and Peucker, 1973, Cartographica.
    """

    key = "polygons"

    def __init__(
        self,
        labels: list[str] | None = None,
        *,
        min_iou: float = 0.5,
        min_support: float = 0.5,
        prior_answers: float = 5.0,
        review_below: float = 0.5,
        resolution: int = 100,
        n_iter: int = 20,
        tol: float = 1e-4,
    ) -> None:
        self.labels = labels
        self.min_iou = min_iou
        self.min_support = min_support
        self.prior_answers = prior_answers
        self.review_below = review_below
        self.resolution = resolution
        self.n_iter = n_iter
        self.tol = tol

    @property
    def least(self) -> float:
        return self.min_iou

    def _parse(self, raw: Any) -> Polygon:
        return as_polygon(raw)

    def _label(self, item: Polygon) -> Any:
        return item.label

    def similarity(self, a: Polygon, b: Polygon) -> float:
        return polygon_iou(a, b, resolution=self.resolution)

    def _merge(self, members: list[Polygon], weights: list[float], context: Any) -> Polygon:
        return merge_polygons(members, weights, resolution=self.resolution, context=context)

    def _write(self, item: Polygon, confidence: float | None) -> dict[str, Any]:
        written: dict[str, Any] = {"points": item.points.tolist(), "label": item.label}
        if confidence is not None:
            written["confidence"] = confidence
        return written

    def _order(self, written: dict[str, Any]) -> tuple[Any, ...]:
        points = np.asarray(written["points"])
        return float(points[:, 1].min()), float(points[:, 0].min()), str(written["label"])


__all__ = ["Polygon", "PolygonAggregator", "answer_score", "as_polygon", "match", "merge_polygons", "outline",
           "polygon_area", "polygon_iou", "polygons_match", "rasterise"]
