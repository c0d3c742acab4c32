"""The chat and verify types: aggregation part by part, gold matching, SFT and preference exports."""

from __future__ import annotations

import json
from typing import Any

from qistas.domain.tasktypes import parse_spec, type_of, validate_answer
from qistas.quality.chat import ChatAggregator
from qistas.quality.verify import VerifyAggregator

CHAT = parse_spec({"type": "chat", "min": 1, "max": 5})
DATA = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                     {"role": "user", "content": "a joke?"}],
        "candidates": ["no", "why did the chicken cross the road", "knock knock"]}
VERIFY = parse_spec({"type": "verify"})


def _lines(fmt: str, spec: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = b"".join(type_of(spec).export_formats[fmt].render(lambda: iter(records), spec))
    return [json.loads(line) for line in out.decode().splitlines()]


def _record(data: dict[str, Any], response: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"task_id": 1, "unique_id": "u1", "data": data, "response": response, "metadata": meta,
            "provenance": {"annotators": 3, "agreement": 1.0, "confidence": 0.9, "method": "m", "needs_review": False}}


def test_chat_parts_are_aggregated_each_by_its_kind() -> None:
    answers = [(0, {"ratings": [4], "choice": 1, "rewrite": "why did the chicken cross the road?"}),
               (1, {"ratings": [5], "choice": 1, "rewrite": "why did the chicken cross the road?"}),
               (2, {"ratings": [4], "choice": 2, "rewrite": "knock knock"})]
    result = type_of(CHAT).aggregate(CHAT, DATA, answers, None)
    assert result.response == {"ratings": [4], "choice": 1, "rewrite": "why did the chicken cross the road?"}
    assert 0 < result.confidence <= 2 / 3 + 1e-9  # the choice had two votes of three
    fitted = ChatAggregator().fit([answers, answers[:2]], n_workers=3, contexts=[{"min": 1, "max": 5}] * 2)
    assert fitted.params_["ratings"] is not None and fitted.params_["rewrite"] is not None
    reloaded = ChatAggregator().load_params(json.loads(json.dumps(fitted.params_)))
    assert reloaded.aggregate(answers, {"min": 1, "max": 5}).response["choice"] == 1


def test_chat_gold_allows_the_tolerance_and_a_close_rewrite() -> None:
    spec = parse_spec({"type": "chat", "gold_tolerance": 1})
    gold = validate_answer(spec, DATA, {"ratings": [4], "choice": 1, "rewrite": "why did the chicken cross the road"})
    chat = type_of(spec)
    assert chat.gold_matches(spec, {"ratings": [5], "choice": 1, "rewrite": "Why did the chicken cross the road?"},
                             gold)
    assert not chat.gold_matches(spec, {"ratings": [2], "choice": 1, "rewrite": gold["rewrite"]}, gold)
    assert not chat.gold_matches(spec, {"ratings": [4], "choice": 0, "rewrite": gold["rewrite"]}, gold)
    assert not chat.gold_matches(spec, {"ratings": [4], "choice": 1, "rewrite": "knock knock"}, gold)


def test_chat_exports_sft_and_preference_pairs() -> None:
    meta = {"provenance": {"model": ["a/m"], "batch": 7}}
    records = [_record(DATA, {"ratings": [4], "choice": 1, "rewrite": "why did the chicken cross?"}, meta)]
    sft = _lines("chat", CHAT, records)
    assert sft[0]["messages"][-1] == {"role": "assistant", "content": "why did the chicken cross?"}
    assert sft[0]["messages"][:3] == DATA["messages"] and sft[0]["generation"]["batch"] == 7
    pairs = _lines("preference", CHAT, records)
    chosen = [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs]
    assert chosen == [(DATA["candidates"][1], "no"), (DATA["candidates"][1], "knock knock"),
                      ("why did the chicken cross?", DATA["candidates"][1])]
    assert all(p["prompt"] == DATA["messages"] for p in pairs)
    # Without candidates the final assistant turn is the one rewritten.
    plain = {"messages": DATA["messages"][:2]}
    spec = parse_spec({"type": "chat"})
    out = _lines("preference", spec, [_record(plain, {"ratings": [2], "rewrite": "hello there"})])
    assert out == [{**out[0], "prompt": plain["messages"][:1],
                    "chosen": [{"role": "assistant", "content": "hello there"}],
                    "rejected": [{"role": "assistant", "content": "hello"}]}]
    assert _lines("preference", spec, [_record(plain, {"ratings": [5], "rewrite": "hello"})]) == []


def test_verify_keeps_or_rejects_by_vote_and_agrees_on_the_text() -> None:
    ctx = {"candidate": "وين أحصل مطعم زين؟"}
    fixed = "وين ألقى مطعم زين؟"
    keep = [(0, {"verdict": "fix", "text": fixed}), (1, {"verdict": "fix", "text": fixed}), (2, {"verdict": "accept"})]
    assert VerifyAggregator().aggregate(keep, ctx).response == {"verdict": "fix", "text": fixed}
    accepted = [(0, {"verdict": "accept"}), (1, {"verdict": "accept"}), (2, {"verdict": "reject"})]
    assert VerifyAggregator().aggregate(accepted, ctx).response == {"verdict": "accept"}
    tie = VerifyAggregator().aggregate([(0, {"verdict": "accept"}), (1, {"verdict": "reject"})], ctx)
    assert tie.response == {"verdict": "reject"} and tie.needs_review
    fitted = VerifyAggregator().fit([keep, accepted], n_workers=3, contexts=[ctx, ctx])
    assert [r.response["verdict"] for r in fitted.results_] == ["fix", "accept"]


def test_verify_normalises_a_fix_that_changes_nothing_and_exports_kept_items() -> None:
    data = {"prompt": "سؤال", "candidate": "وين  البحر؟"}
    assert validate_answer(VERIFY, data, {"verdict": "fix", "text": "وين البحر؟ "}) == {"verdict": "accept"}
    records = [_record(data, {"verdict": "accept"}), _record(data, {"verdict": "reject"}),
               _record(data, {"verdict": "fix", "text": "وين الشاطئ؟"}, {"provenance": {"batch": 3}})]
    sft = _lines("chat", VERIFY, records)
    assert [line["messages"][-1]["content"] for line in sft] == ["وين  البحر؟", "وين الشاطئ؟"]
    assert sft[1]["generation"] == {"batch": 3} and "generation" not in sft[0]
    pairs = _lines("preference", VERIFY, records)
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [("سؤال", "وين الشاطئ؟", "وين  البحر؟")]
    no_prompt = _lines("chat", VERIFY, [_record({"candidate": "سؤال؟"}, {"verdict": "accept"})])
    assert no_prompt[0]["text"] == "سؤال؟"
    gold = {"verdict": "fix", "text": "وين الشاطئ؟"}
    assert type_of(VERIFY).gold_matches(VERIFY, {"verdict": "fix", "text": "وين الشاطىء؟"}, gold) is False
    assert type_of(VERIFY).gold_matches(VERIFY, {"verdict": "fix", "text": "وين الشاطئ"}, gold)
    assert not type_of(VERIFY).gold_matches(VERIFY, {"verdict": "accept"}, gold)
