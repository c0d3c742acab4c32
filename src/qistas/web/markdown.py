"""A small, safe Markdown subset for project instructions, rendered on the server.

Everything the customer wrote is escaped first; the renderer then only ever adds its own
tags. Supported: ``#`` headings, paragraphs, ``-``/``*``/``1.`` lists, fenced code blocks,
`` `code` ``, ``**bold**``, ``*italic*``, and ``[text](https://...)`` links whose target is
http(s) or a path on this server — any other scheme (``javascript:``, ``data:``) stays text.
No raw HTML passes through.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,4})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_SAFE_URL = re.compile(r"^(https?://|/(?!/))", re.IGNORECASE)


def _link(match: re.Match[str]) -> str:
    text, url = match.group(1), match.group(2)
    # The text is already escaped; the URL was escaped too, so quotes cannot break out.
    if not _SAFE_URL.match(url):
        return match.group(0)
    return f'<a href="{url}" rel="noopener noreferrer nofollow" target="_blank">{text}</a>'


def _inline(escaped: str) -> str:
    codes: list[str] = []

    def keep(m: re.Match[str]) -> str:
        codes.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = _INLINE_CODE.sub(keep, escaped)
    out = _LINK.sub(_link, out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _ITALIC.sub(r"<em>\1</em>", out)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], out)


def render(source: str) -> Markup:
    lines = str(escape(source.replace("\r\n", "\n").replace("\x00", ""))).split("\n")
    html: list[str] = []
    para: list[str] = []
    list_tag: str | None = None
    code: list[str] | None = None

    def flush() -> None:
        nonlocal list_tag
        if para:
            html.append(f'<p dir="auto">{_inline(" ".join(para))}</p>')
            para.clear()
        if list_tag:
            html.append(f"</{list_tag}>")
            list_tag = None

    for line in lines:
        if code is not None:
            if line.strip().startswith("```"):
                html.append('<pre dir="auto"><code>' + "\n".join(code) + "</code></pre>")
                code = None
            else:
                code.append(line)
            continue
        if line.strip().startswith("```"):
            flush()
            code = []
            continue
        heading = _HEADING.match(line)
        item = _BULLET.match(line) or _NUMBERED.match(line)
        if heading:
            flush()
            level = len(heading.group(1)) + 1  # the page has the h1
            html.append(f'<h{level} dir="auto">{_inline(heading.group(2))}</h{level}>')
        elif item:
            tag = "ul" if _BULLET.match(line) else "ol"
            if para:
                html.append(f'<p dir="auto">{_inline(" ".join(para))}</p>')
                para.clear()
            if list_tag != tag:
                if list_tag:
                    html.append(f"</{list_tag}>")
                html.append(f"<{tag}>")
                list_tag = tag
            html.append(f'<li dir="auto">{_inline(item.group(1))}</li>')
        elif not line.strip():
            flush()
        else:
            if list_tag:
                html.append(f"</{list_tag}>")
                list_tag = None
            para.append(line.strip())
    if code is not None:
        html.append('<pre dir="auto"><code>' + "\n".join(code) + "</code></pre>")
    flush()
    return Markup("\n".join(html))
