"""Charts drawn on the server as SVG: no chart library, no script, nothing to load.

Every label passes through ``escape``; the SVG uses presentation attributes only (the
content security policy allows no inline style).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from qistas.db.enums import TaskStatus

PALETTE = ("#1f6feb", "#12b76a", "#f79009", "#9e77ed", "#f04438", "#0ba5ec", "#ee46bc", "#667085")
STATUS_COLOURS = {TaskStatus.PENDING: "#f79009", TaskStatus.REVIEW: "#9e77ed", TaskStatus.COMPLETED: "#12b76a",
                  TaskStatus.CANCELED: "#98a2b3"}


def _svg(width: int, height: int, label: str, body: list[str], chart_id: str) -> Markup:
    return Markup(
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" direction="ltr" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        + "".join(body) + "</svg>"
    )


def bar_chart(points: Sequence[tuple[str, int]], *, label: str, chart_id: str, colour: str = PALETTE[0],
              every: int = 1, width: int = 640, height: int = 180) -> Markup:
    """Vertical bars; every ``every``-th point gets its label under the axis."""
    top, bottom, left, right = 12, 28, 36, 8
    inner_w, inner_h = width - left - right, height - top - bottom
    peak = max((v for _, v in points), default=0) or 1
    step = inner_w / max(1, len(points))
    body = [
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - right}" y2="{top + inner_h}" stroke="#d0d5dd"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + inner_h}" text-anchor="end">0</text>',
    ]
    for i, (name, value) in enumerate(points):
        h = inner_h * value / peak
        x = left + i * step + step * 0.15
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + inner_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{escape(name)}: {value}</title></rect>'
        )
        if i % every == 0:
            body.append(f'<text x="{x + step * 0.35:.1f}" y="{height - 10}" text-anchor="middle">{escape(name)}</text>')
    return _svg(width, height, label, body, chart_id)


def status_bar(counts: dict[str, int], *, label: str, names: dict[str, str], chart_id: str,
               width: int = 640, height: int = 56) -> Markup:
    """One stacked bar of task statuses, with a legend."""
    total = sum(counts.values()) or 1
    x = 0.0
    body = []
    legend_x = 0
    for status, colour in STATUS_COLOURS.items():
        n = counts.get(status, 0)
        w = width * n / total
        if n:
            body.append(f'<rect class="seg-{status}" x="{x:.1f}" y="0" width="{w:.1f}" height="22" fill="{colour}">'
                        f'<title>{escape(names.get(status, status))}: {n}</title></rect>')
        x += w
        body.append(f'<rect x="{legend_x}" y="34" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{legend_x + 14}" y="43">{escape(names.get(status, status))}: {n}</text>')
        legend_x += width // len(STATUS_COLOURS)
    return _svg(width, height, label, body, chart_id)


def heatmap(categories: list[str], matrix: list[list[int]], *, label: str, chart_id: str,
            row_title: str, col_title: str) -> Markup:
    """A confusion matrix: darker cells hold more annotations; the diagonal is agreement."""
    n = len(categories)
    cell = max(28, min(56, 360 // max(1, n)))
    left, top = 110, 60
    width, height = left + cell * n + 10, top + cell * n + 10
    peak = max((v for row in matrix for v in row), default=0) or 1
    body = [
        f'<text x="{left + cell * n / 2:.0f}" y="14" text-anchor="middle" font-weight="bold">'
        f'{escape(col_title)}</text>',
        f'<text x="4" y="{top - 8}" font-weight="bold">{escape(row_title)}</text>',
    ]
    for j, name in enumerate(categories):
        body.append(f'<text x="{left + j * cell + cell / 2:.0f}" y="{top - 8}" text-anchor="middle">'
                    f'{escape(name[:10])}</text>')
    for i, name in enumerate(categories):
        y = top + i * cell
        body.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:.0f}" text-anchor="end">{escape(name[:14])}</text>')
        for j, value in enumerate(matrix[i]):
            shade = value / peak
            fill = "#1f6feb" if i == j else "#f04438"
            ink = ' fill="#fff"' if shade > 0.5 else ""  # dark cells get light digits
            body.append(
                f'<rect class="cell" x="{left + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{fill}" '
                f'fill-opacity="{0.08 + 0.85 * shade:.2f}"><title>{escape(name)} → {escape(categories[j])}: '
                f'{value}</title></rect>'
                f'<text x="{left + j * cell + cell / 2 - 1:.0f}" y="{y + cell / 2 + 3:.0f}" text-anchor="middle"'
                f'{ink}>{value}</text>'
            )
    return _svg(width, height, label, body, chart_id)


def meter(value: float | None, *, label: str, chart_id: str, width: int = 240, height: int = 28) -> Markup:
    """A single share from 0 to 1 as a horizontal gauge."""
    share = 0.0 if value is None else max(0.0, min(1.0, value))
    text = "–" if value is None else f"{share * 100:.0f}%"
    body = [
        f'<rect x="0" y="4" width="{width - 50}" height="14" rx="7" fill="#eaecf0"/>',
        f'<rect class="fill" x="0" y="4" width="{(width - 50) * share:.1f}" height="14" rx="7" fill="#12b76a"/>',
        f'<text x="{width - 44}" y="16">{text}</text>',
    ]
    return _svg(width, height, label, body, chart_id)
