"""CoNLL tokenisation: Unicode-category rules, code-point offsets, spans cover whole tokens,
grapheme clusters never split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qistas.domain.conll_tokens import iob, tokenize
from qistas.graphemes import boundaries, clusters


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


def test_emoji_sequences_and_flags_are_one_token_each() -> None:
    text = "زار 👩\u200d👩\u200d👧 الأردن 🇯🇴 أمس"
    assert words(text) == ["زار", "👩\u200d👩\u200d👧", "الأردن", "🇯🇴", "أمس"]
    assert words("🇯🇴🇸🇦") == ["🇯🇴", "🇸🇦"]  # two flags side by side: two symbols
    assert words("نعم👍🏽!") == ["نعم", "👍🏽", "!"]
    assert words("#\ufe0f\u20e3 1\ufe0f\u20e3") == ["#\ufe0f\u20e3", "1\ufe0f\u20e3"]  # keycaps


def test_a_cut_inside_a_cluster_does_not_split_it() -> None:
    text = "أهلا 👩\u200d👩\u200d👧 هنا"
    family = text.index("👩")
    tagged = iob(text, [{"start": family, "end": family + 2, "label": "FAM"}])  # ends after the first ZWJ
    assert [(t, tag) for t, _s, _e, tag in tagged] == [
        ("أهلا", "O"), ("👩\u200d👩\u200d👧", "B-FAM"), ("هنا", "O")]
    assert iob("🇯🇴", [{"start": 1, "end": 1, "label": "X"}]) == [("🇯🇴", 0, 2, "O")]


def test_whitespace_separates_even_inside_a_cluster() -> None:
    # Unicode joins a space and a following mark (how an isolated mark is written), and a
    # prepended concatenation mark with what follows it: whitespace still never enters a token.
    assert tokenize("a \u064e") == [(0, 1), (2, 3)]
    assert clusters("\u0600 x") == ["\u0600 ", "x"]
    assert tokenize("\u0600 x") == [(0, 1), (2, 3)]


@given(st.text(alphabet=st.sampled_from(
    "ab ،.؟\u064e\u0640ـسلام\u200c 1٢!\U0001F3FD👍👩👧\u200d\U0001F1EF\U0001F1F4\u0600\u20e3\u200f"),
    max_size=40), st.data())
def test_tokens_partition_the_non_space_text(text: str, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=4))
    tokens = tokenize(text, cuts)
    assert all(0 <= s < e <= len(text) for s, e in tokens)
    assert all(a[1] <= b[0] for a, b in zip(tokens, tokens[1:], strict=False))
    covered = {i for s, e in tokens for i in range(s, e)}
    assert covered == {i for i, ch in enumerate(text) if not ch.isspace()}
    assert all(not text[s:e].isspace() and not any(c.isspace() for c in text[s:e]) for s, e in tokens)
    edges = {s for s, _ in tokens} | {e for _, e in tokens}
    between = boundaries(text)
    for cut in cuts:
        if cut in between and 0 < cut < len(text) and not text[cut - 1].isspace() and not text[cut].isspace():
            assert cut in edges
    # No token splits a grapheme cluster, except where whitespace inside the cluster separates.
    for s, e in tokens:
        assert s in between or text[s - 1].isspace()
        assert e in between or text[e].isspace()
