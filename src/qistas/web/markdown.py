"""A safe Markdown subset for project instructions, rendered on the server in linear time.

Parsing is markdown-it-py's CommonMark parser (linear in the input, unlike hand-written
regexes that backtrack on inputs such as ``" *a" * 66000``). Raw HTML is off, so everything
the customer wrote is escaped; the renderer only ever adds its own tags. Supported:
``#`` headings (shifted one level down: the page has the h1), paragraphs, ``-``/``*``/``1.``
lists, fenced and indented code blocks, `` `code` ``, ``**bold**``, ``*italic*``, block
quotes, and ``[text](https://...)`` links whose target is http(s) or a path on this server;
any other target (``javascript:``, ``data:``, ``//host``) stays text. Images, tables and
autolinks of bare URLs are not enabled. Every block carries ``dir="auto"`` so Arabic and
English instructions each read in their own direction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markupsafe import Markup, escape

_SAFE_URL = re.compile(r"^(https?://|/(?![/\\]))", re.IGNORECASE)
_DIR_AUTO = ("paragraph_open", "heading_open", "list_item_open", "blockquote_open")


def _safe_link(url: str) -> bool:
    return bool(_SAFE_URL.match(url))


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable(["image", "html_block", "html_inline", "autolink", "lheading", "reference"])
    md.validateLink = _safe_link  # type: ignore[method-assign]
    renderer = md.renderer
    assert isinstance(renderer, RendererHTML)
    rules: dict[str, Any] = renderer.rules
    base = renderer.renderToken

    def block_open(tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        if token.type == "heading_open":
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
        token.attrSet("dir", "auto")
        return str(base(tokens, idx, options, env))

    def heading_close(tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        tokens[idx].tag = f"h{min(int(tokens[idx].tag[1]) + 1, 6)}"
        return str(base(tokens, idx, options, env))

    def link_open(tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        tokens[idx].attrSet("target", "_blank")
        return str(base(tokens, idx, options, env))

    def code(tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        return f'<pre dir="auto"><code>{escape(tokens[idx].content)}</code></pre>\n'

    for name in _DIR_AUTO:
        rules[name] = block_open
    rules["heading_close"] = heading_close
    rules["link_open"] = link_open
    rules["fence"] = code
    rules["code_block"] = code
    return md


_MD = _build()


@lru_cache(maxsize=64)
def render(source: str) -> Markup:
    """The instructions as HTML: escaped text inside the renderer's own tags only.

    A project's instructions change rarely and are shown on every workspace page, so the
    latest few renderings are kept.
    """
    return Markup(_MD.render(source.replace("\x00", "")).strip())
