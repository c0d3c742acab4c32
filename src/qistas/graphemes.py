"""Grapheme clusters: what a reader sees as one character (Unicode UAX #29, extended).

Offsets in Qistas are code points, what Python's ``str`` indexes. A family emoji
(``👩‍👩‍👧``, five code points), a flag (``🇯🇴``, two) or a letter with combining marks
is one grapheme cluster: a span may not start or end inside one, a token never splits
one. The ``regex`` module's ``\\X`` implements the Unicode segmentation rules.
"""

from __future__ import annotations

from functools import lru_cache

import regex

_CLUSTER = regex.compile(r"\X")


def clusters(text: str) -> list[str]:
    """The grapheme clusters of ``text``, in order."""
    return _CLUSTER.findall(text)


@lru_cache(maxsize=256)
def boundaries(text: str) -> frozenset[int]:
    """Every code-point offset that falls between two grapheme clusters (0 and len included)."""
    out = {0}
    for match in _CLUSTER.finditer(text):
        out.add(match.end())
    return frozenset(out)


def is_boundary(text: str, offset: int) -> bool:
    """Whether ``offset`` (a code-point index) does not cut a grapheme cluster of ``text``."""
    if offset <= 0 or offset >= len(text):
        return 0 <= offset <= len(text)
    return offset in boundaries(text)
