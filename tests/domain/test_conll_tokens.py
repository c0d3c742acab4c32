"""CoNLL tokenisation: Unicode-category rules, code-point offsets, spans cover whole tokens."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qistas.domain.tokens import iob, tokenize


def words(text: str) -> list[str]:
    return [text[s:e] for s, e in tokenize(text)]


def test_arabic_words_keep_their_marks_and_joiners() -> None:
    assert words("كَتَبَ الطّالِبُ الدرسَ.") == ["كَتَبَ", "الطّالِبُ", "الدرسَ", "."]
    assert words("جـــميل") == ["جـــميل"]  # tatweel stretches a word, never splits it
    assert words("می\u200cخواهم") == ["می\u200cخواهم"]  # the zero-width non-joiner is inside a word
    assert words("هل أنت هنا؟ نعم، ٣ مرات!") == ["هل", "أنت", "هنا", "؟", "نعم", "،", "٣", "مرات", "!"]
    assert words("«اقتباس»") == ["«", "اقتباس", "»"]


def test_mixed_direction_text_and_emoji() -> None:
    text = "Visit القاهرة in 2026 👍🏽!"
    assert words(text) == ["Visit", "القاهرة", "in", "2026", "👍🏽", "!"]


def test_iob_splits_tokens_at_span_edges() -> None:
    text = "الولايات المتحدةالأمريكية"  # a span ending inside what whitespace would call one word
    end = text.index("الأمريكية")
    tagged = iob(text, [{"start": 0, "end": end, "label": "LOC"}])
    assert [(t, tag) for t, _s, _e, tag in tagged] == [
        ("الولايات", "B-LOC"), ("المتحدة", "I-LOC"), ("الأمريكية", "O")]
    adjacent = iob("Ada Bob", [{"start": 0, "end": 3, "label": "PER"}, {"start": 4, "end": 7, "label": "PER"}])
    assert [tag for *_rest, tag in adjacent] == ["B-PER", "B-PER"]


@given(st.text(alphabet=st.sampled_from("ab ،.؟\u064e\u0640ـسلام\u200c 1٢!\U0001F3FD👍"), max_size=40), st.data())
def test_tokens_partition_the_non_space_text(text: str, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=4))
    tokens = tokenize(text, cuts)
    assert all(0 <= s < e <= len(text) for s, e in tokens)
    assert all(a[1] <= b[0] for a, b in zip(tokens, tokens[1:], strict=False))
    covered = {i for s, e in tokens for i in range(s, e)}
    assert covered == {i for i, ch in enumerate(text) if not ch.isspace()}
    assert all(not text[s:e].isspace() and not any(c.isspace() for c in text[s:e]) for s, e in tokens)
    edges = {s for s, _ in tokens} | {e for _, e in tokens}
    for cut in cuts:
        if 0 < cut < len(text) and not text[cut - 1].isspace() and not text[cut].isspace():
            assert cut in edges
