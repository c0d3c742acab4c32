"""OKS and the reliability-weighted keypoint consensus on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qistas.quality.keypoints import MIN_AREA, KeypointAggregator, answer_score, keypoints_match, oks

TRUTH = [[100.0, 100.0, 2], [160.0, 100.0, 2], [130.0, 180.0, 1], [0, 0, 0]]
SIGMAS = [0.05] * 4


def moved(points: list[list[float]], dx: float, dy: float = 0.0) -> list[list[float]]:
    return [[x + dx, y + dy, v] if v else [0, 0, 0] for x, y, v in points]


def answer(*instances: list[list[float]]) -> dict[str, object]:
    return {"instances": [{"keypoints": p} for p in instances]}


def test_oks_follows_coco() -> None:
    assert oks(TRUTH, TRUTH, SIGMAS) == 1.0
    area = 60 * 80  # the labelled points' bounding box
    d = 6.0
    expected = math.exp(-(d**2) / (2 * area * (2 * 0.05) ** 2))
    assert oks(TRUTH, moved(TRUTH, d), SIGMAS) == pytest.approx(expected)
    # A keypoint only one of the two labels counts as a miss.
    fewer = [TRUTH[0], TRUTH[1], [0, 0, 0], [0, 0, 0]]
    assert oks(TRUTH, fewer, SIGMAS) == pytest.approx(2 / 3, abs=0.01)
    # A lone point scales by MIN_AREA.
    lone = [[10, 10, 2], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert oks(lone, moved(lone, 3), SIGMAS) == pytest.approx(math.exp(-9 / (2 * MIN_AREA * 0.01)))


def test_consensus_is_robust_to_one_stray_point() -> None:
    stray = [row[:] for row in TRUTH]
    stray[0] = [190.0, 20.0, 2]  # one annotator put the first keypoint far away
    answers = [(0, answer(moved(TRUTH, 2))), (1, answer(moved(TRUTH, -2))), (2, answer(stray))]
    result = KeypointAggregator(4, sigmas=SIGMAS).aggregate(answers, {"width": 400, "height": 300})
    [instance] = result.response["instances"]
    got = instance["keypoints"]
    assert got[0][:2] == pytest.approx([100.0, 100.0], abs=1.0)  # the stray placement left out
    assert got[2][2] == 1 and got[3] == [0, 0, 0]
    assert 0.5 < instance["confidence"] <= 1.0
    assert result.extra["keypoints"][0][0] == pytest.approx(2 / 3)


def test_visibility_and_labelling_follow_the_weight() -> None:
    hidden = [row[:] for row in TRUTH]
    hidden[1][2] = 1
    unlabelled = [row[:] for row in TRUTH]
    unlabelled[2] = [0, 0, 0]
    answers = [(0, answer(hidden)), (1, answer(hidden)), (2, answer(unlabelled))]
    [instance] = KeypointAggregator(4).aggregate(answers).response["instances"]
    assert instance["keypoints"][1][2] == 1
    assert instance["keypoints"][2][2] == 1  # two of three labelled it


def test_two_people_two_instances_and_a_missed_one() -> None:
    other = moved(TRUTH, 200)
    answers = [(0, answer(TRUTH, other)), (1, answer(moved(TRUTH, 1), moved(other, 1))), (2, answer(TRUTH))]
    result = KeypointAggregator(4).aggregate(answers)
    assert len(result.response["instances"]) == 2
    # The second person was drawn by two of three: its support lowers the confidence.
    assert result.confidence <= 2 / 3 + 1e-9
    lonely = KeypointAggregator(4).aggregate([(0, answer(TRUTH)), (1, answer()), (2, answer())])
    assert lonely.response == {"instances": []} and lonely.confidence == pytest.approx(2 / 3)


def test_fit_weighs_a_careless_annotator_down() -> None:
    rng = np.random.default_rng(5)
    tasks = []
    for _ in range(10):
        base = moved(TRUTH, rng.uniform(0, 100), rng.uniform(0, 100))
        careless = moved(TRUTH, rng.uniform(150, 300), rng.uniform(150, 300))
        tasks.append([(0, answer(moved(base, 1))), (1, answer(moved(base, -1))), (2, answer(careless))])
    model = KeypointAggregator(4).fit(tasks, n_workers=3)
    assert model.quality_[2] < 0.5 < model.quality_[0]
    with pytest.raises(ValueError):
        KeypointAggregator(3).aggregate([(0, answer(TRUTH))])  # four keypoints for a three-keypoint spec


def test_gold_match_and_answer_score() -> None:
    assert keypoints_match(answer(moved(TRUTH, 2)), answer(TRUTH), n_keypoints=4, min_oks=0.9)
    assert not keypoints_match(answer(moved(TRUTH, 30)), answer(TRUTH), n_keypoints=4, min_oks=0.5)
    assert not keypoints_match(answer(TRUTH, moved(TRUTH, 300)), answer(TRUTH), n_keypoints=4)
    assert answer_score(answer(TRUTH), answer(TRUTH), n_keypoints=4) == 1.0
    assert answer_score(answer(), answer(), n_keypoints=4) == 1.0
