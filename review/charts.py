"""Server-rendered inline SVG charts: no JavaScript, no CDN, allowed by the CSP. The only chart module.

The review app's charts take their colours from CSS classes in static/review.css
(``bar-pos``, ``s0``..``s7``); the run report's (:func:`weights_chart`, :func:`sparkline`)
also live in a stand-alone HTML file, so they carry presentation attributes. Neither
carries an inline ``style``.
"""

from __future__ import annotations

import html

from markupsafe import Markup, escape

WIDTH = 680
LABEL_W = 200
ROW_H = 26
#: run report colours (GOV.UK palette)
GREEN, RED, GREY, BLUE = "#00703c", "#d4351c", "#505a5f", "#1d70b8"


def _plain(value: object) -> str:
    return html.escape(str(value))


def _text(x: float, y: float, s: str, cls: str = "", anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{escape(s)}</text>'


def _rect(x: float, y: float, w: float, h: float, cls: str, title: str = "") -> str:
    tip = f"<title>{escape(title)}</title>" if title else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="{h:.1f}" class="{cls}">{tip}</rect>'


def waterfall(prior: float, steps: list[tuple[str, str, float]], total: float, title: str) -> Markup:
    """Match weight built up from the prior, one comparison at a time (log2 Bayes factors)."""
    rows = [("Prior", "", prior, 0.0, prior)]
    acc = prior
    for name, level, w in steps:
        rows.append((name, level, w, acc, acc + w))
        acc += w
    rows.append(("Match weight", "", total, 0.0, total))
    lo = min(0.0, *(min(a, b) for *_, a, b in rows))
    hi = max(0.0, *(max(a, b) for *_, a, b in rows))
    span = (hi - lo) or 1.0
    plot_w = WIDTH - LABEL_W - 70
    sx = lambda v: LABEL_W + (v - lo) / span * plot_w  # noqa: E731
    height = ROW_H * len(rows) + 40
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{sx(0):.1f}" y1="8" x2="{sx(0):.1f}" y2="{height - 26}" class="axis"/>']
    for i, (name, level, w, start, end) in enumerate(rows):
        y = 10 + i * ROW_H
        label = f"{name} ({level})" if level else name
        final = i in (0, len(rows) - 1)
        cls = "bar-total" if final else ("bar-pos" if w >= 0 else "bar-neg")
        x0, x1 = sorted((sx(start), sx(end)))
        parts.append(_text(LABEL_W - 8, y + 16, label, "label", "end"))
        parts.append(_rect(x0, y + 3, x1 - x0, ROW_H - 8, cls, f"{label}: {w:+.2f}"))
        parts.append(_text(x1 + 4, y + 16, f"{w:+.2f}", "value"))
        if not final and i + 1 < len(rows):
            parts.append(f'<line x1="{sx(end):.1f}" y1="{y + ROW_H - 5}" x2="{sx(end):.1f}" '
                         f'y2="{y + ROW_H + 3}" class="connector"/>')
    parts.append(_text(sx(0), height - 8, "0", "tick", "middle"))
    if lo < 0:
        parts.append(_text(LABEL_W, height - 8, f"{lo:.1f}", "tick", "start"))
    if hi > 0:
        parts.append(_text(LABEL_W + plot_w, height - 8, f"{hi:.1f}", "tick", "end"))
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(rows: list[tuple[str, float]], title: str, fmt: str = "{:,.0f}") -> Markup:
    """Horizontal bars, one per label."""
    if not rows:
        return Markup('<p class="muted">No data yet.</p>')
    top = max(v for _, v in rows) or 1.0
    plot_w = WIDTH - LABEL_W - 90
    height = ROW_H * len(rows) + 10
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for i, (label, v) in enumerate(rows):
        y = 5 + i * ROW_H
        w = v / top * plot_w
        parts.append(_text(LABEL_W - 8, y + 16, label, "label", "end"))
        parts.append(_rect(LABEL_W, y + 3, w, ROW_H - 8, "bar-pos", f"{label}: {fmt.format(v)}"))
        parts.append(_text(LABEL_W + w + 4, y + 16, fmt.format(v), "value"))
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bar_chart(categories: list[str], series: dict[str, list[float]], title: str) -> Markup:
    """One horizontal bar per category, split by series (classes s0..s7), with a legend."""
    if not categories:
        return Markup('<p class="muted">No data yet.</p>')
    names = list(series)
    totals = [sum(series[n][i] for n in names) for i in range(len(categories))]
    top = max(totals) or 1.0
    plot_w = WIDTH - LABEL_W - 90
    legend_h = 22 * len(names) + 10
    height = ROW_H * len(categories) + legend_h + 10
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for i, cat in enumerate(categories):
        y = 5 + i * ROW_H
        x = float(LABEL_W)
        parts.append(_text(LABEL_W - 8, y + 16, cat, "label", "end"))
        for j, n in enumerate(names):
            v = series[n][i]
            if v:
                w = v / top * plot_w
                parts.append(_rect(x, y + 3, w, ROW_H - 8, f"s{j % 8}", f"{cat} · {n}: {v:,.0f}"))
                x += w
        parts.append(_text(x + 4, y + 16, f"{totals[i]:,.0f}", "value"))
    ly = 10 + ROW_H * len(categories)
    for j, n in enumerate(names):
        lx, yy = LABEL_W, ly + j * 22
        parts.append(_rect(lx, yy + 4, 12, 12, f"s{j % 8}"))
        parts.append(_text(lx + 18, yy + 15, n, "legend"))
    parts.append("</svg>")
    return Markup("".join(parts))


def weights_chart(comparisons: list[tuple[str, list[tuple[str, float]]]], title: str) -> str:
    """Match weight per comparison level, grouped by comparison: green bars agree, red disagree.

    For the run report, which is also a stand-alone file without review.css: colours are
    presentation attributes (no ``style``), so the review app's CSP allows it inline too.
    """
    rows: list[tuple[str, str, float | None]] = []
    for name, levels in comparisons:
        rows.append(("head", name, None))
        rows.extend(("level", label, w) for label, w in levels)
    if not rows:
        return ""
    row_h, label_w, bar_w, value_w = 20, 230, 360, 60
    weights = [w for kind, _, w in rows if w is not None]
    span = max(1.0, max((abs(w) for w in weights), default=1.0))
    mid = label_w + bar_w / 2
    height = row_h * len(rows) + 24
    parts = [f'<svg class="weights" width="{label_w + bar_w + value_w}" height="{height}" '
             f'viewBox="0 0 {label_w + bar_w + value_w} {height}" role="img" aria-label="{_plain(title)}">'
             f"<title>{_plain(title)}</title>",
             f'<text x="{mid - 4}" y="12" font-size="11" fill="{GREY}" text-anchor="end">against a match</text>',
             f'<text x="{mid + 4}" y="12" font-size="11" fill="{GREY}">for a match</text>']
    for i, (kind, label, weight) in enumerate(rows):
        y = 20 + i * row_h
        if kind == "head":
            parts.append(f'<text x="0" y="{y + 14}" font-size="13" font-weight="bold">{_plain(label)}</text>')
            continue
        assert weight is not None
        width = abs(weight) / span * (bar_w / 2 - 4)
        x = mid if weight >= 0 else mid - width
        colour = GREEN if weight >= 0 else RED
        parts.append(f'<text x="12" y="{y + 14}" font-size="12">{_plain(label)}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(width, 0.5):.1f}" height="{row_h - 6}" '
                     f'fill="{colour}"><title>{_plain(label)}: {weight:+.2f}</title></rect>')
        parts.append(f'<text x="{label_w + bar_w + 4}" y="{y + 14}" font-size="12">{weight:+.2f}</text>')
    parts.append(f'<line x1="{mid}" x2="{mid}" y1="16" y2="{height}" stroke="{GREY}"/></svg>')
    return "".join(parts)


def sparkline(values: list[int], label: str) -> str:
    """A small line of the values, oldest to newest, the last point marked."""
    if len(values) < 2:
        return ""
    w, h, pad = 130, 28, 3
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1
    step = (w - 2 * pad) / (len(values) - 1)
    pts = [(pad + i * step, h - pad - (v - lo) / span * (h - 2 * pad)) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    lx, ly = pts[-1]
    return (f'<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{_plain(label)}"><title>{_plain(label)}</title>'
            f'<polyline points="{line}" fill="none" stroke="{BLUE}" stroke-width="2"/>'
            f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="3" fill="{BLUE}"/></svg>')
