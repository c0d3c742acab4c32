"""The chat type with a rubric: each assistant turn rated once per criterion, each criterion on
its own scale; validation, aggregation per criterion, gold and the exports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qistas.domain.tasktypes import parse_spec, spec_dict, type_of, validate_answer
from qistas.errors import Invalid
from qistas.quality.chat import ChatAggregator

RUBRIC = {"type": "chat", "min": 1, "max": 5,
          "criteria": [{"name": "helpful", "label": "مفيد"}, {"name": "harmless", "min": 0, "max": 2}]}
SPEC = parse_spec(RUBRIC)
DATA = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                     {"role": "user", "content": "a joke?"}, {"role": "assistant", "content": "knock knock"}]}


def _field(raw: Any, answer: Any = None) -> str:
    with pytest.raises(Invalid) as caught:
        if answer is None:
            parse_spec(raw)
        else:
            validate_answer(parse_spec(raw), DATA, answer)
    return str(caught.value.details["field"])


def test_a_criterion_takes_the_spec_scale_unless_it_names_its_own() -> None:
    stored = spec_dict(SPEC)
    assert stored["criteria"] == [{"name": "helpful", "label": "مفيد", "min": 1, "max": 5},
                                  {"name": "harmless", "label": None, "min": 0, "max": 2}]
    assert parse_spec(stored) == SPEC  # what is stored reads back the same
    # Without a rubric the stored spec is what it always was: no criteria key at all.
    assert "criteria" not in spec_dict(parse_spec({"type": "chat"}))
    assert type_of(SPEC).context(SPEC, DATA, None) == {
        "min": 1, "max": 5, "criteria": {"helpful": {"min": 1, "max": 5}, "harmless": {"min": 0, "max": 2}}}
    assert type_of(SPEC).context(parse_spec({"type": "chat"}), DATA, None) == {"min": 1, "max": 5}


@pytest.mark.parametrize(("criteria", "named"), [
    ([], "task.criteria"),
    ("helpful", "task.criteria"),
    ([{"name": f"c{i}"} for i in range(11)], "task.criteria"),
    ([{"name": "a"}, {"name": "a", "label": "other"}], "task.criteria"),
    ([{"name": "a", "label": "Same"}, {"name": "b", "label": "Same"}], "task.criteria"),
    ([{"name": "a.b"}], "task.criteria.0.name"),
    ([{"name": ""}], "task.criteria.0.name"),
    ([{"label": "x"}], "task.criteria.0.name"),
    ([{"name": "a"}, {"name": "b", "min": 3, "max": 3}], "task.criteria.1.max"),
    ([{"name": "a", "min": 6}], "task.criteria.0.max"),  # above the spec's max it takes
    ([{"name": "a", "max": 101}], "task.criteria.0.max"),
    ([{"name": "a", "min": "low"}], "task.criteria.0.min"),
    ([{"name": "a", "label": ""}], "task.criteria.0.label"),
    ([{"name": "a", "weight": 2}], "task.criteria.0.weight"),
])
def test_bad_rubrics_are_refused_naming_the_field(criteria: Any, named: str) -> None:
    assert _field({"type": "chat", "criteria": criteria}) == named


@pytest.mark.parametrize(("ratings", "named"), [
    ([4, 2], "answer.ratings.0"),
    ([{"helpful": 4}, {"helpful": 2, "harmless": 1}], "answer.ratings.0.harmless"),
    ([{"helpful": 4, "harmless": 1, "honest": 3}, {"helpful": 2, "harmless": 1}], "answer.ratings.0.honest"),
    ([{"helpful": 4, "harmless": 1}, {"helpful": 6, "harmless": 1}], "answer.ratings.1.helpful"),
    ([{"helpful": 4, "harmless": 3}, {"helpful": 2, "harmless": 1}], "answer.ratings.0.harmless"),
    ([{"helpful": 4.0, "harmless": 1}, {"helpful": 2, "harmless": 1}], "answer.ratings.0.helpful"),
    ([{"helpful": True, "harmless": 1}, {"helpful": 2, "harmless": 1}], "answer.ratings.0.helpful"),
    ([{"helpful": 4, "harmless": 1}], "answer.ratings"),
])
def test_each_turn_rates_every_criterion_on_its_scale(ratings: Any, named: str) -> None:
    assert _field(RUBRIC, {"ratings": ratings, "rewrite": "x"}) == named


def test_a_valid_rubric_answer_is_kept_in_the_spec_order() -> None:
    answer = {"ratings": [{"harmless": 0, "helpful": 5}, {"helpful": 1, "harmless": 2}], "rewrite": "ha"}
    normalised = validate_answer(SPEC, DATA, answer)
    assert normalised == answer
    assert [list(r) for r in normalised["ratings"]] == [["helpful", "harmless"]] * 2


def _answers() -> list[tuple[int, dict[str, Any]]]:
    # Everyone agrees the second turn is harmless; the first turn's helpfulness divides them.
    return [(0, {"ratings": [{"helpful": 5, "harmless": 2}, {"helpful": 3, "harmless": 2}], "rewrite": "a joke"}),
            (1, {"ratings": [{"helpful": 1, "harmless": 2}, {"helpful": 3, "harmless": 2}], "rewrite": "a joke"}),
            (2, {"ratings": [{"helpful": 4, "harmless": 2}, {"helpful": 3, "harmless": 2}], "rewrite": "a joke"})]


def test_each_criterion_of_each_turn_has_its_consensus_and_confidence() -> None:
    result = type_of(SPEC).aggregate(SPEC, DATA, _answers(), None)
    assert result.response["ratings"][1] == {"helpful": 3, "harmless": 2}
    assert result.response["ratings"][0]["harmless"] == 2
    assert 1 <= result.response["ratings"][0]["helpful"] <= 5
    sure = result.extra["ratings_confidence"]
    assert [sorted(turn) for turn in sure] == [["harmless", "helpful"]] * 2
    assert sure[0]["helpful"] < sure[0]["harmless"] and sure[0]["helpful"] < sure[1]["helpful"]
    assert result.confidence == pytest.approx(min(min(turn.values()) for turn in sure))
    assert set(result.extra["estimates"][1]) == {"helpful", "harmless"}
    assert result.extra["estimates"][1]["helpful"] == pytest.approx(3.0)


def test_each_criterion_learns_its_own_worker_model() -> None:
    context = type_of(SPEC).context(SPEC, DATA, None)
    tasks = []
    for k in range(12):
        truth = 1 + k % 5
        # Annotator 2 rates harmlessness at random but helpfulness like the others.
        tasks.append([(w, {"ratings": [{"helpful": truth, "harmless": (k * 7 + 1) % 3 if w == 2 else k % 3}] * 2})
                      for w in range(3)])
    fitted = ChatAggregator().fit(tasks, n_workers=3, contexts=[context] * len(tasks))
    assert fitted.params_["ratings"] is None and set(fitted.params_["criteria"]) == {"helpful", "harmless"}
    models = fitted.params_["criteria"]
    harmless, helpful = models["harmless"]["sigmas"], models["helpful"]["sigmas"]
    assert harmless[2] > 2 * harmless[0] and helpful[2] < harmless[2]
    reloaded = ChatAggregator().load_params(json.loads(json.dumps(fitted.params_)))
    for i, answers in enumerate(tasks):
        assert reloaded.aggregate(answers, context).response == fitted.results_[i].response
    # A model fitted before the rubric had answers still aggregates (an unfitted criterion model).
    assert ChatAggregator().load_params({"ratings": None, "rewrite": None}).aggregate(
        tasks[0], context).response["ratings"][0]["helpful"] == 1


def test_gold_needs_every_criterion_within_the_tolerance() -> None:
    spec = parse_spec({**RUBRIC, "gold_tolerance": 1})
    gold = validate_answer(spec, DATA, {"ratings": [{"helpful": 4, "harmless": 2}, {"helpful": 3, "harmless": 1}],
                                        "rewrite": "knock knock, who is there"})
    chat = type_of(spec)
    near = {"ratings": [{"helpful": 5, "harmless": 1}, {"helpful": 2, "harmless": 2}], "rewrite": gold["rewrite"]}
    assert chat.gold_matches(spec, near, gold)
    # Every criterion equal but one, two points away.
    far = {"ratings": [{"helpful": 4, "harmless": 2}, {"helpful": 1, "harmless": 1}], "rewrite": gold["rewrite"]}
    assert not chat.gold_matches(spec, far, gold)
    exact = parse_spec(RUBRIC)
    assert not chat.gold_matches(exact, near, gold) and chat.gold_matches(exact, gold, gold)


def test_answer_score_counts_every_criterion_of_every_turn() -> None:
    chat = type_of(SPEC)
    response = {"ratings": [{"helpful": 5, "harmless": 2}, {"helpful": 3, "harmless": 2}], "rewrite": "a joke"}
    assert chat.answer_score(SPEC, DATA, response, response) == pytest.approx(1.0)
    off = {**response, "ratings": [{"helpful": 1, "harmless": 0}, {"helpful": 3, "harmless": 2}]}
    # helpful 4 of 4 away (0), harmless 2 of 2 away (0), the second turn (1, 1), the rewrite (1): 3 of 5.
    assert chat.answer_score(SPEC, DATA, off, response) == pytest.approx(3 / 5)


def _lines(fmt: str, spec: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = b"".join(type_of(spec).export_formats[fmt].render(lambda: iter(records), spec))
    return [json.loads(line) for line in out.decode().splitlines()]


def _record(data: dict[str, Any], response: dict[str, Any], details: dict[str, Any] | None) -> dict[str, Any]:
    return {"task_id": 1, "unique_id": "u1", "data": data, "response": response, "metadata": None,
            "confidence": 0.4, "details": details,
            "provenance": {"annotators": 3, "agreement": 1.0, "confidence": 0.4, "method": "m", "needs_review": False}}


def test_exports_carry_each_turns_rubric() -> None:
    response = {"ratings": [{"helpful": 4, "harmless": 2}, {"helpful": 2, "harmless": 1}], "rewrite": "who is there?"}
    details = {"estimates": [{"helpful": 4.1, "harmless": 2.0}, {"helpful": 2.2, "harmless": 1.0}],
               "ratings_confidence": [{"helpful": 0.7, "harmless": 0.9}, {"helpful": 0.4, "harmless": 0.8}]}
    sft = _lines("chat", SPEC, [_record(DATA, response, details)])
    assert sft[0]["messages"][-1] == {"role": "assistant", "content": "who is there?"}
    assert sft[0]["rubric"] == [
        {"message": 1, "ratings": {"helpful": 4, "harmless": 2}, "confidence": {"helpful": 0.7, "harmless": 0.9}},
        {"message": 3, "ratings": {"helpful": 2, "harmless": 1}, "confidence": {"helpful": 0.4, "harmless": 0.8}}]
    pairs = _lines("preference", SPEC, [_record(DATA, response, details)])
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [
        ("who is there?", "knock knock")]
    assert pairs[0]["rubric"] == sft[0]["rubric"]
    # A reviewer's correction has no details: each criterion takes the result's confidence.
    corrected = _lines("chat", SPEC, [_record(DATA, response, None)])
    assert [r["confidence"] for r in corrected[0]["rubric"]] == [{"helpful": 0.4, "harmless": 0.4}] * 2
    # Without a rubric the lines are as they were.
    plain = parse_spec({"type": "chat"})
    assert "rubric" not in _lines("chat", plain, [_record(DATA, {"ratings": [4, 2], "rewrite": "x"}, None)])[0]


def test_a_criterion_may_be_given_as_its_name_and_label_in_text() -> None:
    spec = parse_spec({"type": "chat", "max": 3, "criteria": ["helpful", "accuracy: هل الإجابة صحيحة؟ نعم: أو لا"]})
    assert [(c.name, c.label, c.min, c.max) for c in spec.criteria or []] == [
        ("helpful", None, 1, 3), ("accuracy", "هل الإجابة صحيحة؟ نعم: أو لا", 1, 3)]
    assert _field({"type": "chat", "criteria": ["a.b: dotted"]}) == "task.criteria.0.name"
    assert _field({"type": "chat", "criteria": [": no name"]}) == "task.criteria.0.name"
