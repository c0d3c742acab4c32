"""Task type validation as a table: spec, data, answers, and the field each error names."""

from __future__ import annotations

from typing import Any

import pytest

from qistas.domain.tasktypes import all_types, answer_key, parse_spec, type_names, validate_answer, validate_data
from qistas.errors import Invalid

TEXT = "أهلاً 👩🏽‍💻 naïve\u0308!"  # Arabic with shadda-free alef, a ZWJ emoji sequence, a combining mark
N = len(TEXT)

VALID: list[tuple[dict[str, Any], dict[str, Any], Any, Any]] = [
    ({"type": "classification", "labels": ["a", "b"]}, {}, {"label": "b"}, {"label": "b"}),
    ({"type": "classification", "labels": ["a", "b", "c"], "multi": True}, {}, {"labels": ["c", "a"]},
     {"labels": ["a", "c"]}),
    ({"type": "classification", "labels": ["a"], "multi": True}, {}, {"labels": []}, {"labels": []}),
    ({"type": "spans", "labels": ["X"]}, {"text": TEXT}, {"spans": [{"start": 0, "end": N, "label": "X"}]},
     {"spans": [{"start": 0, "end": N, "label": "X"}]}),
    ({"type": "spans", "labels": ["X"]}, {"text": TEXT}, {"spans": []}, {"spans": []}),
    ({"type": "boxes", "labels": ["c"]}, {"image": "i"}, {"boxes": [{"x": 0, "y": 0.5, "w": 1e4, "h": 2,
                                                                     "label": "c"}]},
     {"boxes": [{"x": 0.0, "y": 0.5, "w": 1e4, "h": 2.0, "label": "c"}]}),
    ({"type": "pairwise"}, {"prompt": "p", "a": "a", "b": "b"}, {"choice": "tie"}, {"choice": "tie"}),
    ({"type": "pairwise", "criteria": ["h"]}, {"prompt": "p", "a": "a", "b": "b"},
     {"criteria": {"h": "b"}, "choice": "a"}, {"choice": "a", "criteria": {"h": "b"}}),
    ({"type": "ranking"}, {"prompt": "p", "responses": ["x", "y"]}, {"order": [1, 0]}, {"order": [1, 0]}),
    ({"type": "rating", "min": -2, "max": 2}, {}, {"rating": -2}, {"rating": -2}),
    ({"type": "text"}, {"prompt": "p"}, {"text": " x "}, {"text": " x "}),
    ({"type": "audio_transcription"}, {"audio": "a.wav"}, {"text": "مرحبا"}, {"text": "مرحبا"}),
    ({"type": "audio_classification", "labels": ["a", "b"]}, {"audio": "a.wav"}, {"label": "b"}, {"label": "b"}),
    ({"type": "audio_segments", "labels": ["s", "m"]}, {"audio": "a.wav", "duration": 2.5},
     {"segments": [{"start": 1, "end": 2.5, "label": "m"}, {"start": 0.12345, "end": 0.5, "label": "s"}]},
     {"segments": [{"start": 0.123, "end": 0.5, "label": "s"}, {"start": 1.0, "end": 2.5, "label": "m"}]}),
    ({"type": "document_transcription"}, {"image": "p.png", "width": 100, "height": 50},
     {"regions": [{"x": 0, "y": 0, "w": 100, "h": 50, "text": "سطر \u200fأول"}]},
     {"regions": [{"x": 0.0, "y": 0.0, "w": 100.0, "h": 50.0, "label": "text", "text": "سطر \u200fأول"}]}),
]


@pytest.mark.parametrize(("spec", "data", "answer", "normalised"), VALID)
def test_valid_answers_are_normalised(spec: dict[str, Any], data: dict[str, Any], answer: Any,
                                      normalised: Any) -> None:
    parsed = parse_spec(spec)
    validate_data(parsed, data)
    assert validate_answer(parsed, data, answer) == normalised


INVALID: list[tuple[dict[str, Any], dict[str, Any], Any, str]] = [
    ({"type": "classification", "labels": ["a"]}, {}, None, "answer"),
    ({"type": "classification", "labels": ["a"]}, {}, {"label": "A"}, "answer.label"),
    ({"type": "classification", "labels": ["a"]}, {}, {"label": ["a"]}, "answer.label"),
    ({"type": "classification", "labels": ["a"], "multi": True}, {}, {"labels": [1]}, "answer.labels.0"),
    ({"type": "spans", "labels": ["X"]}, {"text": TEXT}, {"spans": [{"start": 0, "end": N + 1, "label": "X"}]},
     "answer.spans.0.end"),
    ({"type": "spans", "labels": ["X"]}, {"text": TEXT},
     {"spans": [{"start": 0, "end": len(TEXT.encode("utf-16-le")) // 2, "label": "X"}]}, "answer.spans.0.end"),
    ({"type": "spans", "labels": ["X"]}, {"text": TEXT}, {"spans": [{"start": 1.0, "end": 2, "label": "X"}]},
     "answer.spans.0.start"),
    ({"type": "spans", "labels": ["X"]}, {"text": TEXT}, {"spans": [{"start": 0, "end": True, "label": "X"}]},
     "answer.spans.0.end"),
    ({"type": "spans", "labels": ["X"]}, {"text": TEXT}, {"spans": [None]}, "answer.spans.0"),
    ({"type": "boxes", "labels": ["c"]}, {"image": "i"}, {"boxes": [{"x": 0, "y": 0, "w": 1, "h": float("nan"),
                                                                     "label": "c"}]}, "answer.boxes.0.h"),
    ({"type": "boxes", "labels": ["c"]}, {"image": "i", "height": 10}, {"boxes": [{"x": 0, "y": 5, "w": 1, "h": 6,
                                                                                   "label": "c"}]},
     "answer.boxes.0.h"),
    ({"type": "pairwise", "allow_tie": False}, {}, {"choice": "tie"}, "answer.choice"),
    ({"type": "pairwise", "criteria": ["h"], "allow_tie": False}, {}, {"choice": "a", "criteria": {"h": "tie"}},
     "answer.criteria.h"),
    ({"type": "ranking"}, {"responses": ["x", "y", "z"]}, {"order": [2, 1, -1]}, "answer.order"),
    ({"type": "ranking"}, {"responses": ["x", "y", "z"]}, {"order": None}, "answer.order"),
    ({"type": "rating"}, {}, {"rating": 6}, "answer.rating"),
    ({"type": "rating"}, {}, {"rating": 5.0}, "answer.rating"),
    ({"type": "text"}, {}, {"text": "x" * 100_001}, "answer.text"),
    ({"type": "text"}, {}, {"text": None}, "answer.text"),
    ({"type": "audio_segments", "labels": ["s"]}, {"duration": 2.0}, {"segments": [{"start": 1, "end": 2.01,
                                                                                  "label": "s"}]},
     "answer.segments.0.end"),
    ({"type": "audio_segments", "labels": ["s"]}, {}, {"segments": [{"start": 1, "end": 0.5, "label": "s"}]},
     "answer.segments.0.end"),
    ({"type": "audio_segments", "labels": ["s"]}, {}, {"segments": [{"start": 0, "end": 1, "label": "s",
                                                                     "speaker": 2}]}, "answer.segments.0.speaker"),
    ({"type": "document_transcription", "labels": ["a", "b"]}, {},
     {"regions": [{"x": 0, "y": 0, "w": 1, "h": 1, "text": "x"}]}, "answer.regions.0.label"),
    ({"type": "document_transcription"}, {"height": 10},
     {"regions": [{"x": 0, "y": 5, "w": 1, "h": 6, "text": "x"}]}, "answer.regions.0.h"),
    ({"type": "document_transcription"}, {}, {"regions": [{"x": 0, "y": 0, "w": 1, "h": 1, "text": "x" * 10_001}]},
     "answer.regions.0.text"),
]


@pytest.mark.parametrize(("spec", "data", "answer", "field"), INVALID)
def test_invalid_answers_name_the_field(spec: dict[str, Any], data: dict[str, Any], answer: Any,
                                        field: str) -> None:
    with pytest.raises(Invalid) as raised:
        validate_answer(parse_spec(spec), data, answer)
    assert raised.value.details == {"field": field}
    assert raised.value.message.startswith(field + ":")


def test_spec_defaults_round_trip() -> None:
    for kind in type_names():
        needs = {"keypoints": {"keypoints": ["a"]}}
        needs_labels = all_types()[kind].spec_model.model_fields.get("labels")
        labelled = needs_labels is not None and needs_labels.is_required()
        raw = {"type": kind, **({"labels": ["a"]} if labelled else needs.get(kind, {}))}
        spec = parse_spec(raw)
        assert parse_spec(spec.model_dump()) == spec


@pytest.mark.parametrize(("spec", "field"), [
    ({"type": "rating", "max": 1}, "task.max"),  # min defaults to 1
    ({"type": "rating", "min": 3, "max": 2}, "task.max"),
    ({"type": "classification", "labels": ["a" * 201]}, "task.labels.0"),
    ({"type": "pairwise", "criteria": ["c"] * 51}, "task.criteria"),
    ({"type": "Classification", "labels": ["a"]}, "task.type"),
    (["classification"], "task"),
])
def test_bad_specs(spec: Any, field: str) -> None:
    with pytest.raises(Invalid) as raised:
        parse_spec(spec)
    assert raised.value.details == {"field": field}


def test_ranking_data_bounds() -> None:
    spec = parse_spec({"type": "ranking"})
    validate_data(spec, {"prompt": "p", "responses": list(range(50))})
    with pytest.raises(Invalid):
        validate_data(spec, {"prompt": "p", "responses": list(range(51))})


def test_data_must_be_an_object() -> None:
    with pytest.raises(Invalid) as raised:
        validate_data(parse_spec({"type": "text"}), ["prompt"])
    assert raised.value.details == {"field": "data"}


def test_answer_key_is_canonical() -> None:
    assert answer_key({"b": 1, "a": "م"}) == answer_key({"a": "م", "b": 1}) == '{"a":"م","b":1}'


def test_a_span_may_not_cut_a_flag_in_two() -> None:
    text = "زار 👩‍👩‍👧 الأردن 🇯🇴 أمس"
    spec = parse_spec({"type": "spans", "labels": ["LOC"]})
    flag = text.index("🇯🇴")
    with pytest.raises(Invalid) as refused:
        validate_answer(spec, {"text": text}, {"spans": [{"start": flag, "end": flag + 1, "label": "LOC"}]})
    assert refused.value.details == {"field": "answer.spans.0.end"}
    assert "grapheme" in refused.value.message
    whole = {"spans": [{"start": flag, "end": flag + 2, "label": "LOC"}]}
    assert validate_answer(spec, {"text": text}, whole) == whole


@pytest.mark.parametrize("raw, data, field", [
    ({"type": "classification", "labels": ["a"], "text_field": "text"}, {"text": "  "}, "data.text"),
    ({"type": "spans", "labels": ["a"]}, {"text": ""}, "data.text"),
    ({"type": "boxes", "labels": ["a"]}, {"image": ""}, "data.image"),
    ({"type": "text"}, {"prompt": []}, "data.prompt"),
    ({"type": "pairwise"}, {"prompt": "p", "a": "x", "b": "\n"}, "data.b"),
])
def test_an_empty_required_field_is_refused(raw: dict[str, Any], data: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_data(parse_spec(raw), data)
    assert refused.value.details == {"field": field} and "is empty" in refused.value.message


def test_a_valid_spec_is_validated_once_and_an_invalid_one_every_time() -> None:
    raw = {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"}
    first = parse_spec(raw)
    assert parse_spec(dict(raw)) is first  # the same JSON: the object validated before
    assert parse_spec({**raw, "labels": ["positive", "negative"]}).labels == ["positive", "negative"]
    look_alike = {**raw, "labels": ["mixed", "mіxed"]}  # Cyrillic і
    for _ in range(2):
        with pytest.raises(Invalid) as refused:
            parse_spec(look_alike)
        assert refused.value.details == {"field": "task.labels"}
    with pytest.raises(Invalid):
        parse_spec({"type": "classification", "labels": [object()]})  # not JSON: validated as it is
