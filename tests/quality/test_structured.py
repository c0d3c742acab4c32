"""The exact-match vote: the aggregator of a type with no model of its own."""

from typing import Any

import pytest

from qistas.quality.structured import ExactMatchVote, TaskResult, exact_match_score


def vote(answers: list[Any]) -> TaskResult:
    return ExactMatchVote().aggregate(list(enumerate(answers)))


def test_majority_vote() -> None:
    consensus = vote([{"label": "a"}, {"label": "b"}, {"label": "b"}])
    assert consensus.response == {"label": "b"}
    assert consensus.confidence == pytest.approx(2 / 3)


def test_ties_go_to_the_answer_given_first() -> None:
    assert vote([{"label": "b"}, {"label": "a"}]).response == {"label": "b"}
    assert vote([{"label": "a"}, {"label": "b"}, {"label": "b"}, {"label": "a"}]).response == {"label": "a"}


def test_equal_answers_vote_together_whatever_their_key_order() -> None:
    consensus = vote([{"choice": "a", "criteria": {"x": "a", "y": "b"}},
                           {"criteria": {"y": "b", "x": "a"}, "choice": "a"}, {"choice": "b", "criteria": {}}])
    assert consensus.confidence == pytest.approx(2 / 3)
    assert consensus.response == {"choice": "a", "criteria": {"x": "a", "y": "b"}}


def test_unicode_answers() -> None:
    assert vote([{"text": "مرحبا"}, {"text": "مرحبا"}]).confidence == 1.0


def test_a_split_vote_needs_review_and_a_majority_does_not() -> None:
    assert vote([{"label": "a"}, {"label": "b"}]).needs_review
    assert not vote([{"label": "a"}, {"label": "a"}, {"label": "b"}]).needs_review


def test_fit_decides_every_task_and_keeps_no_worker_model() -> None:
    fitted = ExactMatchVote().fit([[(0, {"x": 1}), (1, {"x": 1})], [(1, {"x": 2})]], n_workers=2)
    assert [r.response for r in fitted.results_] == [{"x": 1}, {"x": 2}]
    assert fitted.params_ == {}
    with pytest.raises(ValueError, match="worker 5"):
        ExactMatchVote().fit([[(5, {"x": 1})]], n_workers=2)


def test_score_is_exact_match() -> None:
    assert exact_match_score({"a": [1, 2]}, {"a": [1, 2]}) == 1.0
    assert exact_match_score({"a": [1, 2]}, {"a": [2, 1]}) == 0.0
