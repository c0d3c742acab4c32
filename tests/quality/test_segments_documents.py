"""Time segments and document regions: consensus boundaries, confidence, reliability, gold."""

from __future__ import annotations

import pytest

from qistas.quality.documents import DocumentAggregator, answer_score, cer, characters, regions_match
from qistas.quality.segments import SegmentAggregator, segments_match, temporal_iou
from qistas.quality.segments import answer_score as segment_score


def seg(start: float, end: float, label: str = "speech") -> dict[str, object]:
    return {"start": start, "end": end, "label": label}


def test_temporal_iou() -> None:
    assert temporal_iou(seg(0, 2), seg(1, 3)) == pytest.approx(1 / 3)
    assert temporal_iou(seg(0, 2), seg(0, 2, "music")) == 0.0
    assert temporal_iou(seg(0, 1), seg(2, 3)) == 0.0


def test_segments_consensus_takes_the_median_boundaries() -> None:
    answers = [(0, {"segments": [seg(1.0, 2.0), seg(5.0, 6.0, "music")]}),
               (1, {"segments": [seg(1.2, 2.1)]}),
               (2, {"segments": [seg(0.9, 2.4), seg(7.5, 8.0, "music")]})]
    result = SegmentAggregator(["speech", "music"]).aggregate(answers, {"duration": 10.0})
    [speech] = result.response["segments"]
    assert (speech["start"], speech["end"], speech["label"]) == (1.0, 2.1, "speech")
    # Two lone music segments had a third of the support each: left out, and the task is unsure.
    assert result.confidence == pytest.approx(2 / 3)
    assert speech["confidence"] > result.confidence


def test_segments_clipped_to_the_recording_and_an_empty_consensus() -> None:
    result = SegmentAggregator(["s"]).aggregate([(0, {"segments": [seg(9.0, 10.0, "s")]}),
                                                 (1, {"segments": [seg(9.2, 10.4, "s")]})], {"duration": 10.0})
    assert result.response["segments"][0]["end"] == 10.0
    silent = SegmentAggregator(["s"]).aggregate([(0, {"segments": []}), (1, {"segments": []})])
    assert silent.response == {"segments": []} and silent.confidence == 1.0


def test_segment_reliability_lowers_a_careless_annotator() -> None:
    good = [seg(0, 1), seg(2, 3)]
    items = []
    for k in range(8):
        shift = 0.02 * k
        careless = [seg(0.6 + shift, 1.9), seg(4.0, 4.5)]
        items.append([(0, {"segments": good}), (1, {"segments": good}), (2, {"segments": careless})])
    fitted = SegmentAggregator(["speech"]).fit(items, n_workers=3)
    quality = fitted.params_["quality"]
    assert quality[2] < 0.5 < min(quality[0], quality[1])
    assert all([(s["start"], s["end"]) for s in r.response["segments"]] == [(0, 1), (2, 3)] for r in fitted.results_)
    restored = SegmentAggregator(["speech"]).load_params(fitted.params_)
    assert restored.aggregate(items[0]).response == fitted.results_[0].response


def test_segment_gold_and_score() -> None:
    gold = {"segments": [seg(0, 1), seg(2, 3, "music")]}
    assert segments_match({"segments": [seg(0.1, 1.0), seg(2.1, 3.0, "music")]}, gold, min_iou=0.8)
    assert not segments_match({"segments": [seg(0.5, 1.0), seg(2.1, 3.0, "music")]}, gold, min_iou=0.8)
    assert not segments_match({"segments": [seg(0, 1)]}, gold)
    assert not segments_match({"segments": [seg(0, 1), seg(2, 3)]}, gold)  # the wrong label
    assert segment_score(gold, gold) == 1.0 and segment_score({"segments": []}, gold) == 0.0


def region(x: float, y: float, w: float, h: float, text: str, label: str = "line") -> dict[str, object]:
    return {"x": x, "y": y, "w": w, "h": h, "label": label, "text": text}


def test_characters_and_cer_keep_arabic_marks_and_drop_bidi_controls() -> None:
    assert characters("\u200fمَرحبا  بكم\u200e") == list("مَرحبا بكم")
    assert cer("مرحبا", "مَرحبا") == pytest.approx(1 / 6)  # a missing fatha is a character error
    assert cer("abc", "abc") == 0.0 and cer("", "") == 0.0 and cer("x", "") == 1.0


def test_document_consensus_per_region_with_arabic_text() -> None:
    a = [region(10, 10, 200, 30, "بسم الله الرحمن الرحيم"), region(10, 60, 200, 30, "Total: 42 QAR")]
    b = [region(12, 9, 198, 31, "بسم الله الرحمن الرحيم"), region(11, 61, 199, 30, "Total: 42 QR")]
    c = [region(9, 11, 201, 29, "بسم الله الرحمان الرحيم"), region(10, 60, 200, 30, "Total: 42 QAR"),
         region(300, 200, 20, 20, "stamp")]
    result = DocumentAggregator(["line"]).aggregate([(0, {"regions": a}), (1, {"regions": b}), (2, {"regions": c})],
                                                   {"width": 400, "height": 300})
    texts = [r["text"] for r in result.response["regions"]]
    assert texts == ["بسم الله الرحمن الرحيم", "Total: 42 QAR"]
    assert [r["x"] for r in result.response["regions"]] == [10, 10]
    assert result.confidence <= 2 / 3 + 1e-9  # the stamp only one of three drew
    assert all(0 < r["confidence"] <= 1 for r in result.response["regions"])


def test_document_fit_learns_both_parts_and_reloads() -> None:
    page = [region(10, 10, 200, 30, "one two three four"), region(10, 60, 200, 30, "five six seven")]
    sloppy = [region(10, 10, 200, 30, "one too tree four"), region(10, 60, 200, 30, "fife six seven")]
    items = [[(0, {"regions": page}), (1, {"regions": page}), (2, {"regions": sloppy})] for _ in range(6)]
    fitted = DocumentAggregator(["line"]).fit(items, n_workers=3)
    wer = fitted.params_["text"]["wer"]
    assert wer[2] > max(wer[0], wer[1])
    assert [r["text"] for r in fitted.results_[0].response["regions"]] == ["one two three four", "five six seven"]
    again = DocumentAggregator(["line"]).load_params(fitted.params_).aggregate(items[0])
    assert again.response == fitted.results_[0].response


def test_document_gold_needs_place_and_reading() -> None:
    gold = {"regions": [region(0, 0, 100, 20, "فاتورة رقم 42")]}
    assert regions_match({"regions": [region(2, 1, 98, 20, "فاتورة رقم 42")]}, gold, min_iou=0.8, max_cer=0.0)
    assert regions_match({"regions": [region(2, 1, 98, 20, "فاتوره رقم 42")]}, gold, min_iou=0.8, max_cer=0.1)
    assert not regions_match({"regions": [region(2, 1, 98, 20, "فاتوره رقم 24")]}, gold, max_cer=0.1)
    assert not regions_match({"regions": [region(50, 0, 100, 20, "فاتورة رقم 42")]}, gold, min_iou=0.5)
    assert answer_score(gold, gold) == 1.0
    assert 0 < answer_score({"regions": [region(0, 0, 100, 20, "فاتوره رقم 42")]}, gold) < 1
