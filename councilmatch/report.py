"""The run report: what a night did, as JSON (for machines) and HTML (for people).

Per-feed counts and quarantine reasons (councils by name and ONS code), which feeds
fell back to their last good extract, flags per match type, change since the last
run, a night-over-night trend (records, quarantine, flags per match type), time per
stage and each match type's model (match weight per comparison level, charted, and
the fit check when matching recorded one). Only counts, ids and model parameters:
no clear identifier can reach it.

Operators read it in the review app (``/reports/<run_id>``, hub operators only), linked
from the DAG run in Airflow; :func:`render_body` is the part both pages share.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any


from anonymise import at_rest
from councilmatch import run_state
from councilmatch.councils import council_name
from councilmatch.home import Home
from councilmatch.safepath import path_inside, safe_name

#: Nights shown in the trend (this one and the ones before it).
TREND_NIGHTS = 7


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
        "match_type_titles": _match_type_titles(home),
        "trend": [],
        "model_reuse": _model_reuse(home, run_id),
        # each feed's data-quality profile (ingest.quality): rates per field, duplicates, change, alerts
        "data_quality": {f["feed_id"]: f["quality"] for f in feeds if f.get("quality")},
        "data_quality_alerts": [f"{f['feed_id']}: {a}" for f in feeds for a in (f.get("quality") or {}).get("alerts", [])],
    }


def _match_type_titles(home: Home) -> dict[str, str]:
    """Match type id -> title, from the match types matching loads (empty if they cannot be read)."""
    try:
        from matching.matchtype import load_matchtypes

        loaded = load_matchtypes(home)
    except Exception:  # noqa: BLE001  a bad YAML must not cost the night its report
        return {}
    items = loaded.values() if isinstance(loaded, dict) else loaded
    return {str(m.id): str(getattr(m, "title", None) or m.id) for m in items if getattr(m, "id", None)}


def trend(home: Home, report: dict[str, Any], nights: int = TREND_NIGHTS) -> list[dict[str, Any]]:
    """This night and the ones before it, oldest first: records, quarantine and flags per match type.

    Read from the earlier nights' reports (``reports/<run_id>.json``), so the trend costs no recount.
    """
    run_id = report["run_id"]
    earlier = sorted(p for p in home.reports.glob("*.json") if p.stem < run_id) if home.reports.exists() else []
    points = []
    for path in earlier[-(nights - 1):] if nights > 1 else []:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            points.append(_trend_point(old))
        except (ValueError, KeyError, TypeError):
            continue  # not a run report (or an unreadable one): leave the night out
    return points + [_trend_point(report)]


def _trend_point(report: dict[str, Any]) -> dict[str, Any]:
    totals = report.get("totals", {})
    # Records matching worked on: every feed's accepted rows, tonight's extract or its last good one.
    in_matching = sum(int(f.get("accepted", 0)) for f in report.get("feeds", []) if f.get("status") != "failed")
    return {"run_id": str(report["run_id"]), "records": int(totals.get("rows_in", 0)),
            "records_in_matching": in_matching,
            "quarantined": int(totals.get("quarantined", 0)), "flags": int(report.get("flags", 0)),
            "flags_per_match_type": {str(k): int(v) for k, v in report.get("flags_per_match_type", {}).items()}}


def write_run_report(home: Home, run_id: str) -> dict[str, Any]:
    report = build_run_report(home, run_id)
    report["trend"] = trend(home, report)
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
.model{margin-bottom:2rem}.muted{color:#505a5f}
"""

GREEN, RED, GREY, BLUE = "#00703c", "#d4351c", "#505a5f", "#1d70b8"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]], cls: str = "report-table") -> str:
    """Cells are HTML already (escape with ``_e``); headers are text."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _council(code: str) -> str:
    name = council_name(code)
    return _e(code) if name == code else f"{_e(name)} <span class='muted'>({_e(code)})</span>"


def _feed(feed_id: str) -> str:
    """``E09000007/tenancy`` -> "Camden (E09000007) · tenancy"."""
    council, _, dataset = str(feed_id).partition("/")
    return f"{_council(council)} · {_e(dataset)}" if dataset else _e(feed_id)


def _title(report: dict[str, Any], match_type: str) -> str:
    title = report.get("match_type_titles", {}).get(match_type)
    return f"{_e(title)} <span class='muted'>({_e(match_type)})</span>" if title else _e(match_type)


def _weights_chart(comparisons: list[tuple[str, list[tuple[str, float]]]], title: str) -> str:
    """Match weight per comparison level, grouped by comparison: green bars agree, red disagree.

    Presentation attributes only (no ``style``), so the review app's CSP allows it inline.
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
             f'viewBox="0 0 {label_w + bar_w + value_w} {height}" role="img" aria-label="{_e(title)}">'
             f"<title>{_e(title)}</title>",
             f'<text x="{mid - 4}" y="12" font-size="11" fill="{GREY}" text-anchor="end">against a match</text>',
             f'<text x="{mid + 4}" y="12" font-size="11" fill="{GREY}">for a match</text>']
    for i, (kind, label, weight) in enumerate(rows):
        y = 20 + i * row_h
        if kind == "head":
            parts.append(f'<text x="0" y="{y + 14}" font-size="13" font-weight="bold">{_e(label)}</text>')
            continue
        assert weight is not None
        width = abs(weight) / span * (bar_w / 2 - 4)
        x = mid if weight >= 0 else mid - width
        colour = GREEN if weight >= 0 else RED
        parts.append(f'<text x="12" y="{y + 14}" font-size="12">{_e(label)}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(width, 0.5):.1f}" height="{row_h - 6}" '
                     f'fill="{colour}"><title>{_e(label)}: {weight:+.2f}</title></rect>')
        parts.append(f'<text x="{label_w + bar_w + 4}" y="{y + 14}" font-size="12">{weight:+.2f}</text>')
    parts.append(f'<line x1="{mid}" x2="{mid}" y1="16" y2="{height}" stroke="{GREY}"/></svg>')
    return "".join(parts)


def _sparkline(values: list[int], label: str) -> str:
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
            f'aria-label="{_e(label)}"><title>{_e(label)}</title>'
            f'<polyline points="{line}" fill="none" stroke="{BLUE}" stroke-width="2"/>'
            f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="3" fill="{BLUE}"/></svg>')


def _change(values: list[int]) -> str:
    if len(values) < 2:
        return "<span class='muted'>first night</span>"
    delta = values[-1] - values[-2]
    return "no change" if delta == 0 else f"{delta:+,}"


def _trend_section(report: dict[str, Any]) -> str:
    points = report.get("trend") or []
    if not points:
        return "<p class='muted'>No trend: this report was written before trends were recorded.</p>"
    nights = [p["run_id"] for p in points]
    types = sorted({t for p in points for t in p["flags_per_match_type"]})
    series: list[tuple[str, list[int]]] = [
        ("Records ingested tonight", [p["records"] for p in points]),
        ("Records in matching", [p.get("records_in_matching", 0) for p in points]),
        ("Rows quarantined", [p["quarantined"] for p in points]),
        ("Flags, all match types", [p["flags"] for p in points]),
    ] + [(f"Flags: {t}", [p["flags_per_match_type"].get(t, 0) for p in points]) for t in types]
    rows = []
    for name, values in series:
        label = _title(report, name[7:]) if name.startswith("Flags: ") else _e(name)
        rows.append([label] + [f"<span class='num'>{v:,}</span>" for v in values]
                    + [_change(values), _sparkline(values, f"{name}, last {len(values)} nights")])
    return _table(["measure", *nights, "change since last night", "trend"], rows, "report-table trend")


def _fit_check(model: dict[str, Any]) -> str:
    """The model's fit check (written by matching), as a table of its keys and values, if there is one."""
    check = model.get("fit_check")
    if not check:
        return "<p class='muted'>No fit check recorded for this model.</p>"
    if not isinstance(check, dict):
        return f"<p>Fit check: {_e(check)}</p>"

    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return "<strong>yes</strong>" if value else "<span class='bad'>no</span>"
        if isinstance(value, float):
            return _e(f"{value:.4g}")
        if isinstance(value, dict):
            return "<br>".join(f"{_e(k)}: {cell(v)}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return ", ".join(cell(v) for v in value)
        return _e(value)

    return _table(["fit check", "value"], [[_e(str(k).replace("_", " ")), cell(v)] for k, v in check.items()])


def _model_section(report: dict[str, Any], name: str, model: dict[str, Any]) -> str:
    comparisons = [(str(c.get("name", "")), [(str(l.get("label", "")), float(l["weight"]))
                                             for l in c.get("levels", []) if "weight" in l])
                   for c in model.get("comparisons", [])]
    parts = [f"<section class='model' id='model-{_e(name)}'><h3>{_title(report, name)}</h3>"]
    facts = []
    lam = model.get("lambda", model.get("prior"))
    if isinstance(lam, (int, float)) and lam > 0:
        facts.append(f"prior match probability {lam:.3g} (about 1 in {round(1 / lam):,})")
    if isinstance(model.get("prior_weight"), (int, float)):
        facts.append(f"prior weight {model['prior_weight']:+.2f}")
    for key, text in (("training_pairs", "training pairs"), ("random_pairs", "random pairs for u"),
                      ("iterations", "EM iterations")):
        if isinstance(model.get(key), int):
            facts.append(f"{model[key]:,} {text}")
    if facts:
        parts.append(f"<p>{_e('; '.join(facts))}.</p>")
    parts.append(_weights_chart(comparisons, f"Match weight per comparison level: {name}"))
    parts.append("<h4>Fit check</h4>" + _fit_check(model))
    levels = _model_levels(model)
    parts.append("<details><summary>m, u and weight per level</summary>")
    parts.append(_table(["comparison: level", "m", "u", "match weight"],
                        [[_e(l), _e(_fmt(m)), _e(_fmt(u)), f"{w:+.3f}"] for l, w, m, u in levels]))
    parts.append("</details></section>")
    return "".join(parts)


def _model_levels(model: dict[str, Any]) -> list[tuple[str, float, Any, Any]]:
    """(comparison: level, weight, m, u) rows of a saved model (matching.model's JSON)."""
    return [(f"{comp['name']}: {level['label']}", float(level["weight"]), level.get("m"), level.get("u"))
            for comp in model.get("comparisons", []) for level in comp.get("levels", [])]


def render_body(report: dict[str, Any]) -> str:
    """The report's content (no ``<html>`` or styles): shared by the file and the review app's page."""
    feeds_rows = []
    for f in report["feeds"]:
        status = _e(f.get("status", ""))
        if f.get("status") in ("failed", "fell_back"):
            status = f'<span class="bad">{status}</span>'
        reasons = f.get("quarantine_reasons") or {}
        feeds_rows.append([
            _feed(f["feed_id"]), status, f'<span class="num">{_e(f.get("rows_in", 0))}</span>',
            _e(f.get("accepted", 0)), _e(f.get("quarantined", 0)),
            "<br>".join(f"{_e(r)}: {_e(n)}" for r, n in sorted(reasons.items())),
            _e(f.get("error", "")),
        ])
    parts = [
        f"<h1>Nightly matching run {_e(report['run_id'])}</h1>",
        f"<p class='lead'><strong>{report['flags']:,}</strong> flags from {report['totals']['rows_in']:,} records "
        f"ingested tonight ({report['totals']['accepted']:,} accepted, {report['totals']['quarantined']:,} "
        "quarantined).</p>",
    ]
    if report["feeds_failed"]:
        fell_back = ", ".join(_feed(f) for f in report["feeds_fell_back"]) or "none"
        parts.append(f"<p class='bad'>Feeds that failed tonight: {', '.join(_feed(f) for f in report['feeds_failed'])}"
                     f" (fell back to last good extract: {fell_back})</p>")
    parts.append("<h2>Flags per match type</h2>")
    parts.append(_table(["match type", "flags"], [[_title(report, k), f"<span class='num'>{v:,}</span>"]
                                                  for k, v in report["flags_per_match_type"].items()]))
    parts.append("<h2>Night over night</h2>")
    parts.append(_trend_section(report))
    parts.append("<h2>Change since the last run</h2>")
    parts.append(_table(["measure", "value"], [[_e(k.replace("_", " ")), _e(v)]
                                               for k, v in report["change_since_last_run"].items()]))
    parts.append("<h2>Feeds</h2>")
    parts.append(_table(["feed", "status", "rows in", "accepted", "quarantined", "quarantine reasons", "error"],
                        feeds_rows))
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
    parts.append("<h2>Models: match weight per comparison level, and fit check</h2>")
    parts.extend(_model_section(report, name, model) for name, model in report["models"].items())
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """The stand-alone report file (``reports/<run_id>.html``)."""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>councilmatch run {_e(report['run_id'])}</title><style>{_CSS}</style></head><body>"
            + render_body(report) + "</body></html>")


def load_report(home: Home, run_id: str) -> dict[str, Any]:
    """A night's report (``reports/<run_id>.json``); ``FileNotFoundError`` if there is none.

    ``run_id`` must look like a run id (letters, digits, ``-``, ``_``, ``.``; no path).
    """
    if not run_id or len(run_id) > 64 or not all(c.isalnum() or c in "-_." for c in run_id) \
            or run_id.startswith("."):
        raise FileNotFoundError(f"not a run id: {run_id!r}")
    path = home.reports / f"{run_id}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no report for run {run_id}")
    return json.loads(path.read_text(encoding="utf-8"))


def list_reports(home: Home) -> list[str]:
    """Run ids with a report, newest first."""
    if not home.reports.exists():
        return []
    return sorted((p.stem for p in home.reports.glob("*.json") if not p.name.endswith(".tmp")), reverse=True)


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
        parts.append(f"<h3>{_feed(feed_id)}</h3>")
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
