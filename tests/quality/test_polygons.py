"""Polygon masks, outlines and the reliability-weighted polygon consensus on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qistas.quality.polygons import (
    PolygonAggregator,
    answer_score,
    outline,
    polygon_area,
    polygon_iou,
    polygons_match,
    rasterise,
)

SQUARE = [[10, 10], [50, 10], [50, 40], [10, 40]]


def shifted(points: list[list[float]], dx: float, dy: float = 0.0) -> list[list[float]]:
    return [[x + dx, y + dy] for x, y in points]


def circle(cx: float, cy: float, r: float, n: int = 60) -> list[list[float]]:
    return [[cx + r * math.cos(t), cy + r * math.sin(t)] for t in np.linspace(0, 2 * math.pi, n, endpoint=False)]


def answer(*polygons: tuple[list[list[float]], str]) -> dict[str, object]:
    return {"polygons": [{"points": p, "label": label} for p, label in polygons]}


def test_rasterise_fills_by_the_even_odd_rule() -> None:
    square = np.array(SQUARE, dtype=float)
    assert rasterise(square, (0, 0), 1.0, (50, 60)).sum() == 40 * 30
    triangle = np.array([[0, 0], [100, 0], [50, 80]], dtype=float)
    assert rasterise(triangle, (0, 0), 1.0, (80, 100)).sum() == pytest.approx(polygon_area(triangle), rel=0.01)
    # A bow tie crosses itself: the even-odd rule fills both wings.
    bow = np.array([[0, 0], [20, 20], [20, 0], [0, 20]], dtype=float)
    assert rasterise(bow, (0, 0), 1.0, (20, 20)).sum() == pytest.approx(200, abs=20)


def test_iou_of_overlapping_squares_and_labels() -> None:
    a, b = answer((SQUARE, "cat"))["polygons"][0], answer((shifted(SQUARE, 10), "cat"))["polygons"][0]
    assert polygon_iou(a, a) == 1.0
    assert polygon_iou(a, b) == pytest.approx(30 * 30 / (50 * 30), abs=0.02)
    assert polygon_iou(a, {**b, "label": "dog"}) == 0.0
    assert polygon_iou(a, {"points": shifted(SQUARE, 100), "label": "cat"}) == 0.0


def test_outline_gives_the_region_back_as_a_polygon() -> None:
    mask = rasterise(np.array(circle(50, 50, 40)), (0, 0), 1.0, (100, 100))
    ring = outline(mask)
    assert ring is not None and 8 <= len(ring) <= 80
    assert polygon_area(ring) == pytest.approx(math.pi * 40**2, rel=0.02)
    holed = np.ones((40, 40), bool)
    holed[10:20, 10:20] = False
    filled = outline(holed)
    assert filled is not None and polygon_area(filled) == pytest.approx(1600, rel=0.03)  # holes are filled
    assert outline(np.zeros((4, 4), bool)) is None


def test_consensus_is_the_majority_mask() -> None:
    truth = circle(100, 100, 50)
    answers = [(0, answer((shifted(truth, 4), "cat"))), (1, answer((shifted(truth, -4), "cat"))),
               (2, answer((truth, "cat"), (SQUARE, "cat")))]  # one annotator adds a polygon no one else drew
    result = PolygonAggregator(["cat"]).aggregate(answers, {"width": 300, "height": 200})
    [polygon] = result.response["polygons"]
    assert polygon["label"] == "cat"
    assert polygon_iou(polygon, {"points": truth, "label": "cat"}) > 0.95
    assert 0.8 < polygon["confidence"] <= 1.0
    # The polygon only a third drew is left out, and lowers the task's confidence.
    assert result.confidence == pytest.approx(2 / 3)
    assert not result.needs_review


def test_disagreement_and_an_unknown_worker() -> None:
    answers = [(0, answer((SQUARE, "cat"))), (-1, answer((SQUARE, "dog")))]
    result = PolygonAggregator(["cat", "dog"]).aggregate(answers)
    # Half the weight each: both kept (support 0.5 reaches min_support), each at confidence 0.5.
    assert sorted(p["label"] for p in result.response["polygons"]) == ["cat", "dog"]
    assert result.confidence == pytest.approx(0.5, abs=0.01)  # times the IoU with the outlined mask
    empty = PolygonAggregator().aggregate([(0, {"polygons": []}), (1, {"polygons": []})])
    assert empty.response == {"polygons": []} and empty.confidence == 1.0


def test_fit_weighs_a_careless_annotator_down() -> None:
    rng = np.random.default_rng(3)
    tasks = []
    for _ in range(12):
        truth = circle(rng.uniform(60, 140), rng.uniform(60, 140), rng.uniform(20, 40), 30)
        careless = circle(rng.uniform(0, 200), rng.uniform(0, 200), 15, 12)
        tasks.append([(0, answer((shifted(truth, 1), "cat"))), (1, answer((shifted(truth, -1), "cat"))),
                      (2, answer((careless, "cat")))])
    model = PolygonAggregator(["cat"]).fit(tasks, n_workers=3)
    assert model.converged_
    assert model.quality_[2] < 0.5 < model.quality_[0]
    restored = PolygonAggregator(["cat"]).load_params(model.params_)
    assert restored.aggregate(tasks[0]).response == model.results_[0].response


def test_gold_match_and_answer_score() -> None:
    gold = answer((SQUARE, "cat"), (circle(100, 100, 30), "dog"))
    close = answer((circle(100, 100, 29), "dog"), (shifted(SQUARE, 2), "cat"))
    assert polygons_match(close, gold, min_iou=0.8)
    assert not polygons_match(answer((SQUARE, "cat")), gold)
    assert not polygons_match(answer((shifted(SQUARE, 20), "cat"), (circle(100, 100, 30), "dog")), gold,
                              min_iou=0.5)
    assert answer_score(gold, gold) == pytest.approx(1.0)
    assert answer_score({"polygons": []}, {"polygons": []}) == 1.0
    assert answer_score(answer((SQUARE, "cat")), gold) == pytest.approx(2 / 3)
