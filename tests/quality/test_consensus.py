import math

import pytest

from qistas.quality import box_consensus, box_iou, span_consensus, span_overlap


def test_span_exact_majority():
    anns = [
        [(0, 5, "PER"), (10, 14, "LOC")],
        [(0, 5, "PER"), (10, 14, "ORG")],
        [(0, 5, "PER")],
    ]
    c = span_consensus(anns)
    assert c.items == [(0, 5, "PER")]
    assert c.support == [1.0]
    # pairwise F1: (A,B) 2*1/4 = .5, (A,C) 2*1/3, (B,C) 2*1/3
    assert c.agreement == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)


def test_span_overlap_groups_near_boundaries():
    anns = [[(0, 5, "PER")], [(0, 6, "PER")], [(0, 5, "PER")], [(20, 25, "PER")]]
    assert span_consensus(anns).items == []  # exact: 2 of 4 is no majority
    c = span_consensus(anns, match="overlap", min_overlap=0.5)
    assert c.items == [(0, 5, "PER")]
    assert c.support == [0.75]
    assert span_overlap((0, 5, "A"), (0, 6, "A")) == pytest.approx(5 / 6)
    assert span_overlap((0, 5, "A"), (0, 5, "B")) == 0.0


def test_span_dicts_empty_and_single_annotator():
    c = span_consensus([[{"start": 1, "end": 3, "label": "X"}], []], min_votes=1)
    assert c.items == [(1, 3, "X")]
    assert c.agreement == 0.0
    assert span_consensus([[], []]).agreement == 1.0
    assert math.isnan(span_consensus([[(0, 1, "A")]]).agreement)
    with pytest.raises(ValueError, match="match"):
        span_consensus([[]], match="fuzzy")


def test_boxes_iou_clustering_and_mean_box():
    assert box_iou((0, 0, 10, 10, "c"), (5, 0, 10, 10, "c")) == pytest.approx(50 / 150)
    anns = [
        [(0, 0, 10, 10, "car"), (50, 50, 5, 5, "dog")],
        [(1, 1, 10, 10, "car")],
        [(0, 0, 12, 12, "car"), (80, 80, 5, 5, "dog")],
    ]
    c = box_consensus(anns, iou_threshold=0.5)
    assert len(c.items) == 1
    x, y, w, h, label = c.items[0]
    assert label == "car"
    assert (x, y, w, h) == pytest.approx((1 / 3, 1 / 3, 32 / 3, 32 / 3))
    assert c.support == [1.0]
    assert 0 < c.agreement < 1
    with pytest.raises(ValueError):
        box_consensus([[(0, 0, -1, 1, "a")]])
