"""Server-side rendering pieces without a browser: Markdown, charts, catalogues, redirects."""

from __future__ import annotations

import json
import re
import time

import pytest

from qistas.web import charts
from qistas.web.i18n import Translator
from qistas.web.jsonview import json_html
from qistas.web.markdown import render
from qistas.web.pages.common import safe_next

pytestmark = pytest.mark.sqlite_only


def test_markdown_subset() -> None:
    html = str(render("# Title\n\nSome **bold** and *it* and `x<y`.\n\n- one\n- two\n\n```\na < b\n```"))
    assert '<h2 dir="auto">Title</h2>' in html
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html and "<code>x&lt;y</code>" in html
    assert html.count("<li") == 2 and "<pre" in html and "a &lt; b" in html


@pytest.mark.parametrize("source", [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](data:text/html,<script>alert(1)</script>)",
    '[x](https://ok.example/" onmouseover="alert(1))',
    "[x](//evil.example/)",
    "**<b onclick=alert(1)>**",
])
def test_markdown_never_passes_markup(source: str) -> None:
    html = str(render(source))
    assert "<script" not in html and "<img" not in html and "<b " not in html
    assert 'href="javascript' not in html.lower() and 'href="data' not in html and 'href="//' not in html
    assert '" onmouseover' not in html


def test_markdown_links() -> None:
    html = str(render("[guide](https://example.com/a?b=1&c=2) and [here](/work)"))
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow"' in html
    assert '<a href="/work"' in html


def test_charts_escape_labels() -> None:
    evil = '<script>alert(1)</script>"'
    svg = str(charts.bar_chart([(evil, 3)], label=evil, chart_id="c"))
    svg += str(charts.heatmap([evil, "b"], [[1, 2], [3, 4]], label=evil, chart_id="h", row_title=evil, col_title=evil))
    svg += str(charts.status_bar({"pending": 1}, label=evil, names={"pending": evil}, chart_id="s"))
    assert "<script" not in svg and "&lt;script&gt;" in svg


def test_translator_falls_back_and_formats() -> None:
    ar = Translator("ar")
    assert ar.dir == "rtl" and ar("nav.work") == "العمل"
    assert ar("no.such.key") == "no.such.key"
    assert Translator("en")("console.done_of", done=2, total=5) == "2 of 5 done"
    assert set(Translator("en").subset("ws.")) == set(ar.subset("ws."))


@pytest.mark.parametrize(("value", "expected"), [
    ("/work/3", "/work/3"), ("//evil.example", "/"), ("https://evil.example", "/"), ("/\\evil", "/"),
    (None, "/"), ("", "/"),
])
def test_redirects_stay_on_site(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_markdown_renders_in_linear_time() -> None:
    # Quadratic emphasis matching took minutes on this input (under the instructions limit).
    source = " *a" * 66000
    started = time.perf_counter()
    html = str(render(source))
    assert time.perf_counter() - started < 5.0
    assert html.startswith('<p dir="auto">')


def test_markdown_keeps_bidi_and_levels() -> None:
    html = str(render("## قواعد\n\n> quoted\n\n    indented code\n\n1. first"))
    assert '<h3 dir="auto">قواعد</h3>' in html and '<blockquote dir="auto">' in html
    assert '<ol>' in html and '<pre dir="auto"><code>indented code' in html


def test_customer_json_is_bidi_safe() -> None:
    html = str(json_html({"ب": "\u202eevil", "n": [1, "<b>x</b>"], "q": 'a"\u2066b'}))
    assert "\u202e" not in html and "\u2066" not in html
    assert "<bdi>&#34;\\u202eevil&#34;</bdi>" in html and "<bdi>&#34;ب&#34;</bdi>" in html
    assert "<bdi>&#34;&lt;b&gt;x&lt;/b&gt;&#34;</bdi>" in html and "<bdi>&#34;a\\&#34;\\u2066b&#34;</bdi>" in html
    assert json.loads(re.sub(r"</?bdi>", "", html).replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&#34;", '"')) == {"ب": "\u202eevil", "n": [1, "<b>x</b>"], "q": 'a"\u2066b'}
