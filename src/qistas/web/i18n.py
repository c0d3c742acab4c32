"""Message catalogues (``web/i18n/<lang>.json``) and the reader's language.

English is the reference catalogue: a key missing from another language falls back to it,
and a test keeps the catalogues' keys equal.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from starlette.requests import Request

LANGUAGES = {"en": "ltr", "ar": "rtl"}
DEFAULT = "en"
LANG_COOKIE = "qistas_lang"
_DIR = Path(__file__).parent / "i18n"


@cache
def catalogue(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    accept = request.headers.get("accept-language", "")
    for part in accept.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.dir = LANGUAGES[lang]
        self._strings = catalogue(lang)
        self._fallback = catalogue(DEFAULT)

    def __call__(self, key: str, **values: object) -> str:
        text = self._strings.get(key) or self._fallback.get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._fallback

    def word(self, kind: str, identifier: str) -> str:
        """An identifier (``method``, ``status`` ...) in words; the identifier itself if it has none."""
        key = f"{kind}.{identifier}"
        return self(key) if self.has(key) else identifier

    def subset(self, prefix: str) -> dict[str, str]:
        """The strings a script needs, e.g. every ``ws.`` key for the workspace."""
        keys = [k for k in self._fallback if k.startswith(prefix)]
        return {k: self(k) for k in keys}
