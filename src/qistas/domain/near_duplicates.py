"""Near-duplicate texts: character shingles, MinHash and banded LSH, checked by exact Jaccard.

A text is normalised for comparison as the text aggregator compares words
(``quality._words.normalise``: NFKC, case folding, punctuation, tatweel and Arabic diacritics
dropped, alef / yeh / teh marbuta forms folded), then cut into overlapping 5-character
shingles. Two texts are near-duplicates when the Jaccard similarity of their shingle sets is
at least the threshold. MinHash signatures (64 hashes) in 16 bands of 4 rows find the
candidates without comparing every pair (a pair at Jaccard 0.8 shares a band with
probability 1 - (1 - 0.8^4)^16 > 0.9999); each candidate is confirmed on the exact sets.

Broder, A. (1997), "On the resemblance and containment of documents"; Leskovec, Rajaraman and
Ullman, "Mining of Massive Datasets", ch. 3 (the banding).
"""

from __future__ import annotations

import zlib

import numpy as np

from qistas.quality._words import normalise

SHINGLE = 5
HASHES = 64
BANDS = 16
ROWS = HASHES // BANDS
_PRIME = np.uint64(4_294_967_311)  # the first prime above 2**32
_rng = np.random.default_rng(20240611)  # fixed: signatures must not change between processes
_A = _rng.integers(1, 2**31, size=HASHES, dtype=np.uint64)
_B = _rng.integers(0, 2**31, size=HASHES, dtype=np.uint64)


def normalised(text: str) -> str:
    return " ".join(word for piece in text.split() for word in normalise(piece))


def shingles(text: str) -> frozenset[int]:
    """The text's normalised shingles, hashed to 32 bits (CRC-32: stable across processes)."""
    norm = normalised(text)
    if len(norm) <= SHINGLE:
        return frozenset({zlib.crc32(norm.encode())}) if norm else frozenset()
    return frozenset(zlib.crc32(norm[i:i + SHINGLE].encode()) for i in range(len(norm) - SHINGLE + 1))


def signature(found: frozenset[int]) -> np.ndarray:
    """MinHash: per hash function ``(a x + b) mod p``, the least value over the shingles
    (``a < 2**31`` and ``x < 2**32`` keep ``a x + b`` within 64 bits)."""
    if not found:
        return np.full(HASHES, np.iinfo(np.uint64).max, dtype=np.uint64)
    x = np.fromiter(found, dtype=np.uint64, count=len(found))
    return ((np.outer(x, _A) + _B) % _PRIME).min(axis=0)


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class Index:
    """Texts seen so far; ``find`` says which one a new text nearly duplicates."""

    def __init__(self, threshold: float) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._sets: list[frozenset[int]] = []
        self._keys: list[str] = []
        self._bands: list[dict[bytes, list[int]]] = [{} for _ in range(BANDS)]

    def __len__(self) -> int:
        return len(self._sets)

    def find(self, text: str) -> str | None:
        """The key of an indexed text this one nearly duplicates, or None."""
        found = shingles(text)
        seen: set[int] = set()
        for band, rows in zip(self._bands, self._band_keys(signature(found)), strict=True):
            for i in band.get(rows, ()):
                if i not in seen:
                    seen.add(i)
                    if jaccard(found, self._sets[i]) >= self.threshold:
                        return self._keys[i]
        return None

    def add(self, text: str, key: str) -> None:
        found = shingles(text)
        i = len(self._sets)
        self._sets.append(found)
        self._keys.append(key)
        for band, rows in zip(self._bands, self._band_keys(signature(found)), strict=True):
            band.setdefault(rows, []).append(i)

    @staticmethod
    def _band_keys(sig: np.ndarray) -> list[bytes]:
        return [sig[b * ROWS:(b + 1) * ROWS].tobytes() for b in range(BANDS)]
