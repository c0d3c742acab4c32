"""Words of a free text for comparison: Unicode- and Arabic-aware normalisation, word edit distance.

A text is cut into *pieces* that keep their original spelling (case, punctuation, marks)
and carry a normalised *word* used only to compare texts:

* pieces are split at whitespace, and inside a token at a run of punctuation that joins
  two word characters (``well-known`` -> ``well-`` + ``known``, ``end.The`` -> ``end.`` +
  ``The``), except a run of apostrophes (``don't`` is one word) and a run between two
  digits (``1,000`` and ``3.5`` stay one word). The separator stays on the left piece,
  which is marked *glued* to the next one (no space between them in the original);
* a token of punctuation only (``--``, ``*``) carries no word: its text is kept with the
  piece before it (or after it, at the start of a text).

A piece's normalised word (:func:`normalise`): NFKC (compatibility forms: full-width
letters, ligatures, Arabic presentation forms), case fold, NFKC again; then dropped:
punctuation (Unicode category P), format characters (Cf: zero-width joiners,
bidirectional marks, soft hyphen), apostrophe-like marks (``ʼ ´ \\```), the Arabic tatweel
(U+0640) and Arabic diacritics (harakat, shadda, sukun, superscript alef, Quranic annotation
marks); then folded, as in Arabic retrieval (Larkey, Ballesteros and Connell 2007): the
alef forms ``أ إ آ ٱ ٲ ٳ`` -> ``ا``, alef maqsura ``ى`` -> ``ي``, teh marbuta ``ة`` -> ``ه``,
Persian/Urdu ``ی`` -> ``ي`` and keheh ``ک`` -> ``ك``, Arabic-Indic and extended digits ->
ASCII digits. Hamza on a carrier (``ؤ ئ``) is kept: it changes the word. Other scripts'
marks are kept (a Devanagari vowel sign is a letter there), except the dot that case
folding leaves on a Turkish ``İ``. Symbols (``$ % +``) are kept.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import regex

_APOSTROPHES = "'\u2019\u2018\u02bc\u00b4`"
_DROP = regex.compile(
    r"[\p{P}\p{Cf}\u02bc\u00b4`\u0640\u0610-\u061a\u064b-\u065f\u0670"
    r"\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed\u08d3-\u08ff]+"
)
_FOLD = str.maketrans(
    {
        "\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627",
        "\u0671": "\u0627", "\u0672": "\u0627", "\u0673": "\u0627",
        "\u0649": "\u064a", "\u06cc": "\u064a", "\u0629": "\u0647", "\u06a9": "\u0643",
        **{chr(0x0660 + d): str(d) for d in range(10)},
        **{chr(0x06F0 + d): str(d) for d in range(10)},
    }
)
# a punctuation run inside a token, with a word character on each side
_INNER = regex.compile(r"(?<=[^\p{P}\s])\p{P}+(?=[^\p{P}\s])")


@lru_cache(maxsize=1 << 16)
def normalise(piece: str) -> tuple[str, ...]:
    """The normalised words of one piece (usually one; none for punctuation only).

    NFKC can expand a ligature into several words (U+FDFA), hence a tuple.
    """
    s = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", piece).casefold())
    s = s.replace("i\u0307", "i")  # case-folded Turkish dotted capital I
    return tuple(_DROP.sub("", s).translate(_FOLD).split())


def normalise_text(text: str) -> list[str]:
    """The normalised words of a whole text (for WER against a reference)."""
    return [w for piece, _ in _pieces(text) for w in normalise(piece)]


def _pieces(text: str) -> list[tuple[str, bool]]:
    """``(original piece, glued to the next piece)`` in reading order."""
    if _INNER.search(text) is None:
        return [(token, False) for token in text.split()]
    out: list[tuple[str, bool]] = []
    for token in text.split():
        start = 0
        for m in _INNER.finditer(token):
            a, b = m.span()
            if token[a - 1].isdigit() and token[b].isdigit():
                continue
            if all(c in _APOSTROPHES for c in m.group()):
                continue
            out.append((token[start:b], True))
            start = b
        out.append((token[start:], False))
    return out


def parse(text: str) -> tuple[list[str], list[str], list[bool]]:
    """``(words, forms, glued)``: normalised words, each one's original spelling, and
    whether it was written against the next word without a space.

    A piece that normalises to several words gives its whole spelling to the first and an
    empty spelling to the others; text without a word (punctuation only) joins the
    spelling of the word before it (after it at the start).
    """
    pieces = _pieces(text)
    norms = [normalise(piece) for piece, _ in pieces]
    if all(len(n) == 1 for n in norms):  # the common case: one word per piece
        return [n[0] for n in norms], [p for p, _ in pieces], [g for _, g in pieces]
    words: list[str] = []
    forms: list[str] = []
    glued: list[bool] = []
    pending = ""
    for (piece, glue), norm in zip(pieces, norms, strict=True):
        if not norm:
            if forms:
                forms[-1] = forms[-1] + ("" if glued[-1] else " ") + piece
                glued[-1] = glue
            else:
                pending = pending + piece + ("" if glue else " ")
            continue
        for k, w in enumerate(norm):
            words.append(w)
            forms.append(pending + piece if k == 0 else "")
            glued.append(glue if k == len(norm) - 1 else True)
            pending = ""
    if pending and not forms:
        return [], [], []
    return words, forms, glued


def word_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two word sequences (unit costs).

    A common prefix and suffix are dropped first (exact for unit costs). Then bit-parallel
    over the words of ``a`` (Myers 1999, in Hyyrö's 2003 formulation for global distance):
    one column of the DP table is two bit-vectors (vertical +1 and -1 deltas), updated in
    a handful of integer operations per word of ``b``. Python's integers have no width
    limit, so any length works; ``full ^ x`` is ``~x`` kept non-negative.
    """
    if a == b:
        return 0
    short = min(len(a), len(b))
    lo = 0
    while lo < short and a[lo] == b[lo]:
        lo += 1
    hi = 0
    while hi < short - lo and a[-1 - hi] == b[-1 - hi]:
        hi += 1
    if lo or hi:
        a, b = a[lo:len(a) - hi], b[lo:len(b) - hi]
    m = len(a)
    if not m or not b:
        return m or len(b)
    peq: dict[str, int] = {}
    bit = 1
    for word in a:
        peq[word] = peq.get(word, 0) | bit
        bit <<= 1
    full = bit - 1
    last = bit >> 1
    vp, vn, dist = full, 0, m
    get = peq.get
    for y in b:
        x = get(y, 0) | vn
        d0 = (((x & vp) + vp) ^ vp) | x
        hp = vn | (full ^ (d0 | vp))
        hn = d0 & vp
        if hp & last:
            dist += 1
        elif hn & last:
            dist -= 1
        hp = ((hp << 1) | 1) & full
        vp = ((hn << 1) & full) | (full ^ (d0 | hp))
        vn = hp & d0
    return dist
