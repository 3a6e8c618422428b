"""The run report: what a night did, as JSON (for machines) and HTML (for people).

Per-feed counts and quarantine reasons, which feeds fell back to their last good
extract, flags per match type, change since the last run, time per stage and
each match type's model (m, u and match weight per comparison level, charted).
Only counts, ids and model parameters: no clear identifier can reach it.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any


from anonymise import at_rest
from councilmatch import run_state
from councilmatch.home import Home
from councilmatch.safepath import path_inside, safe_name


def build_run_report(home: Home, run_id: str) -> dict[str, Any]:
    feeds = run_state.load_feeds(home, run_id)
    stages = run_state.load_stages(home, run_id)
    flags_path = home.flags_path(run_id)
    flags = at_rest.read_frame(flags_path, columns=["flag_id", "match_type"], home=home) if flags_path.exists() else None
    per_type = flags.groupby("match_type").size().to_dict() if flags is not None and len(flags) else {}

    previous = run_state.previous_run_id(home, run_id)
    change: dict[str, Any] = {"previous_run": previous or "none (first run)"}
    if previous and flags is not None:
        before = set(at_rest.read_frame(home.flags_path(previous), columns=["flag_id"], home=home)["flag_id"])
        now = set(flags["flag_id"])
        change.update(new_flags=len(now - before), no_longer_raised=len(before - now), still_raised=len(now & before))

    return {
        "run_id": run_id,
        "feeds": feeds,
        "feeds_failed": [f["feed_id"] for f in feeds if f.get("status") in ("failed", "fell_back")],
        "feeds_fell_back": [f["feed_id"] for f in feeds if f.get("status") == "fell_back"],
        "totals": {
            "rows_in": sum(int(f.get("rows_in", 0)) for f in feeds if f.get("status") == "ingested"),
            "accepted": sum(int(f.get("accepted", 0)) for f in feeds if f.get("status") == "ingested"),
            "quarantined": sum(int(f.get("quarantined", 0)) for f in feeds if f.get("status") == "ingested"),
        },
        "flags": int(len(flags)) if flags is not None else 0,
        "flags_per_match_type": {str(k): int(v) for k, v in sorted(per_type.items())},
        "change_since_last_run": change,
        "stages": stages,
        "models": _load_models(home, run_id),
        "model_reuse": _model_reuse(home, run_id),
        # each feed's data-quality profile (ingest.quality): rates per field, duplicates, change, alerts
        "data_quality": {f["feed_id"]: f["quality"] for f in feeds if f.get("quality")},
        "data_quality_alerts": [f"{f['feed_id']}: {a}" for f in feeds for a in (f.get("quality") or {}).get("alerts", [])],
    }


def write_run_report(home: Home, run_id: str) -> dict[str, Any]:
    report = build_run_report(home, run_id)
    home.reports.mkdir(parents=True, exist_ok=True)
    json_path = path_inside(home.reports, safe_name(run_id, "run id") + ".json", what="report")
    html_path = path_inside(home.reports, safe_name(run_id, "run id") + ".html", what="report")
    _atomic_write(json_path, json.dumps(report, indent=2, sort_keys=True, default=str))
    _atomic_write(html_path, render_html(report))
    return {"json": str(json_path), "html": str(html_path), "flags": report["flags"],
            "feeds_failed": report["feeds_failed"]}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _model_reuse(home: Home, run_id: str) -> dict[str, Any]:
    """Per match type: linked in full or incrementally, the model's age, why it was re-trained,
    the drift figure (see matching.incremental)."""
    folder = run_state.run_dir(home, run_id) / "model"
    out = {}
    for p in sorted(folder.glob("*.json")):
        reuse = run_state.read_json(home, p).get("reuse")
        if reuse:
            out[p.stem] = reuse
    return out


def _load_models(home: Home, run_id: str) -> dict[str, Any]:
    folder = run_state.run_dir(home, run_id) / "model"
    return {p.stem: run_state.read_json(home, p) for p in sorted(folder.glob("*.json"))}


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,Arial,sans-serif;margin:2rem;color:#0b0c0c;max-width:70rem}
h1{border-bottom:4px solid #1d70b8;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #b1b4b6;padding:.3rem .7rem;text-align:left}
th{background:#f3f2f1}.bad{color:#d4351c;font-weight:bold}.num{text-align:right}
.model{margin-bottom:2rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _weights_chart(levels: list[tuple[str, float]]) -> str:
    """Horizontal bars of match weight per comparison level (green agrees, red disagrees)."""
    if not levels:
        return ""
    row_h, label_w, bar_w = 18, 260, 300
    span = max(1.0, max(abs(w) for _, w in levels))
    mid = label_w + bar_w / 2
    parts = [f'<svg width="{label_w + bar_w + 60}" height="{row_h * len(levels) + 10}" role="img">']
    for i, (label, weight) in enumerate(levels):
        y = 5 + i * row_h
        width = abs(weight) / span * (bar_w / 2)
        x = mid if weight >= 0 else mid - width
        colour = "#00703c" if weight >= 0 else "#d4351c"
        parts.append(f'<text x="0" y="{y + 12}" font-size="12">{_e(label)}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{row_h - 4}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + bar_w + 4}" y="{y + 12}" font-size="12">{weight:+.2f}</text>')
    parts.append(f'<line x1="{mid}" x2="{mid}" y1="0" y2="{row_h * len(levels) + 10}" stroke="#505a5f"/></svg>')
    return "".join(parts)


def _model_levels(model: dict[str, Any]) -> list[tuple[str, float, Any, Any]]:
    """(comparison: level, weight, m, u) rows of a saved model (matching.model's JSON)."""
    return [(f"{comp['name']}: {level['label']}", float(level["weight"]), level.get("m"), level.get("u"))
            for comp in model.get("comparisons", []) for level in comp.get("levels", [])]


def render_html(report: dict[str, Any]) -> str:
    feeds_rows = []
    for f in report["feeds"]:
        status = _e(f.get("status", ""))
        if f.get("status") in ("failed", "fell_back"):
            status = f'<span class="bad">{status}</span>'
        reasons = f.get("quarantine_reasons") or {}
        feeds_rows.append([
            _e(f["feed_id"]), status, f'<span class="num">{_e(f.get("rows_in", 0))}</span>',
            _e(f.get("accepted", 0)), _e(f.get("quarantined", 0)),
            "<br>".join(f"{_e(r)}: {_e(n)}" for r, n in sorted(reasons.items())),
            _e(f.get("error", "")),
        ])
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>councilmatch run {_e(report['run_id'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Nightly matching run {_e(report['run_id'])}</h1>",
        f"<p><strong>{report['flags']:,}</strong> flags from {report['totals']['rows_in']:,} records ingested tonight "
        f"({report['totals']['accepted']:,} accepted, {report['totals']['quarantined']:,} quarantined).</p>",
    ]
    if report["feeds_failed"]:
        parts.append(f"<p class='bad'>Feeds that failed tonight: {_e(', '.join(report['feeds_failed']))}"
                     f" (fell back to last good extract: {_e(', '.join(report['feeds_fell_back']) or 'none')})</p>")
    parts.append("<h2>Flags per match type</h2>")
    parts.append(_table(["match type", "flags"], [[_e(k), _e(v)] for k, v in report["flags_per_match_type"].items()]))
    parts.append("<h2>Change since the last run</h2>")
    parts.append(_table(["measure", "value"], [[_e(k), _e(v)] for k, v in report["change_since_last_run"].items()]))
    parts.append("<h2>Feeds</h2>")
    parts.append(_table(["feed", "status", "rows in", "accepted", "quarantined", "quarantine reasons", "error"], feeds_rows))
    parts.extend(_quality_html(report))
    parts.append("<h2>Time per stage</h2>")
    parts.append(_table(["stage", "seconds"], [[_e(k), _e(v.get("seconds", ""))] for k, v in report["stages"].items()]))
    if report.get("model_reuse"):
        parts.append("<h2>Models: age, drift, linking</h2>")
        rows = []
        for name, r in report["model_reuse"].items():
            drift = r.get("drift") or {}
            tv = drift.get("total_variation")
            rows.append([_e(name), _e(r.get("mode")) + (f" ({_e(r['full_because'])})" if r.get("full_because") else ""),
                         _e(f"{r.get('trained_on')} ({r.get('trained_run')})"), _e(r.get("age_days")),
                         _e("—" if tv is None else f"{tv:.3f}") + f" / {_e(r.get('drift_threshold'))}",
                         _e(drift.get("new_candidate_pairs", 0)), _e(r.get("retrained") or "reused")])
        parts.append(_table(["match type", "linking", "model trained", "age (days)",
                             "drift (total variation / threshold)", "new candidate pairs", "model"], rows))
    parts.append("<h2>Models: match weight per comparison level</h2>")
    for name, model in report["models"].items():
        levels = _model_levels(model)
        parts.append(f"<div class='model'><h3>{_e(name)}</h3>")
        if "lambda" in model or "prior" in model:
            parts.append(f"<p>Prior match probability λ = {_e(model.get('lambda', model.get('prior')))}</p>")
        parts.append(_weights_chart([(label, w) for label, w, _, _ in levels]))
        parts.append(_table(["comparison: level", "m", "u", "match weight"],
                            [[_e(l), _e(_fmt(m)), _e(_fmt(u)), f"{w:+.3f}"] for l, w, m, u in levels]))
        parts.append("</div>")
    parts.append("</body></html>")
    return "".join(parts)


def _pct(x: Any) -> str:
    return f"{100 * float(x):.1f}%"


def _quality_html(report: dict[str, Any]) -> list[str]:
    """Per feed: alerts, optional values set to missing, and missing / invalid / placeholder rates per field."""
    quality = report.get("data_quality") or {}
    if not quality:
        return []
    parts = ["<h2>Data quality</h2>"]
    alerts = report.get("data_quality_alerts") or []
    parts.append("<p class='bad'>Alerts: " + "<br>".join(_e(a) for a in alerts) + "</p>" if alerts
                 else "<p>No shape change since each feed's previous extract.</p>")
    for feed_id, q in sorted(quality.items()):
        parts.append(f"<h3>{_e(feed_id)}</h3>")
        change = q.get("change") or {}
        parts.append(f"<p>{_e(q.get('rows_read', 0))} rows read, {_e(q.get('accepted', 0))} accepted; "
                     f"duplicate record ids {_e(q.get('duplicate_record_ids', 0))}, duplicate records "
                     f"{_e(q.get('duplicate_records', 0))}; previous extract: {_e(change.get('previous_extract') or 'none')}</p>")
        if q.get("set_missing"):
            parts.append(_table(["optional value set to missing (field: problem)", "rows"],
                                [[_e(r), _e(n)] for r, n in q["set_missing"].items()]))
        deltas = change.get("fields") or {}
        rows = []
        for fld, f in (q.get("fields") or {}).items():
            d = deltas.get(fld, {})
            moved = ", ".join(f"{k.removesuffix('_rate')} {v * 100:+.1f} pts" for k, v in d.items() if abs(v) >= 0.001)
            rows.append([_e(fld), _e(_pct(f.get("missing_rate", 0)) + (" (not in header)" if f.get("not_in_header") else "")),
                         _e(_pct(f.get("invalid_rate", 0))), _e(_pct(f.get("placeholder_rate", 0))),
                         _e(f.get("date_style") or ""), _e(moved)])
        parts.append(_table(["field", "missing", "invalid", "placeholders", "date style", "change since previous"], rows))
    return parts


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) else ("" if x is None else str(x))
