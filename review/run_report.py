"""The run report: what a night did, rendered as HTML (for people) from its JSON (for machines).

Per-feed counts and quarantine reasons (councils by name and ONS code), which feeds
fell back to their last good extract, flags per match type, change since the last
run, a night-over-night trend (records, quarantine, flags per match type), time per
stage and each match type's model (match weight per comparison level, charted, and
the fit check when matching recorded one). Only counts, ids and model parameters:
no clear identifier can reach it.

``orchestrate.report`` builds it each night from the run state and writes
``reports/<run_id>.json`` and ``.html``; operators read it in the review app
(``/reports/<run_id>``, hub operators only), linked from the DAG run in Airflow;
:func:`render_body` is the part both pages share.
"""

from __future__ import annotations

import html
import json
from typing import Any

from councilmatch.councils import council_name
from councilmatch.home import Home
from matching.household import HouseholdFit
from review.charts import sparkline, weights_chart

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
                    + [_change(values), sparkline(values, f"{name}, last {len(values)} nights")])
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


def _household(fit: Any) -> str:
    """The household model's share of left records whose own person is absent (matching.household)."""
    if not isinstance(fit, dict):
        return ""
    try:
        text = HouseholdFit(**fit).note()
    except (TypeError, ValueError):  # written by another version: not shown rather than shown wrong
        return ""
    return f"<p class='household'>{_e(text)}</p>"


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
    parts.append(weights_chart(comparisons, f"Match weight per comparison level: {name}"))
    parts.append("<h4>Fit check</h4>" + _fit_check(model))
    parts.append(_household(model.get("household")))
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
