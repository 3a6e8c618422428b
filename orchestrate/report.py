"""Build a night's run report from its run state, and write it as JSON and HTML.

What it holds and who reads it: ``review.run_report`` (which renders it, and which the
review app serves). Only counts, ids and model parameters: no clear identifier can reach it.
"""

from __future__ import annotations

import json
from typing import Any

from anonymise import at_rest
from councilmatch.fileio import atomic_write
from councilmatch.home import Home
from councilmatch.safepath import path_inside, safe_name
from matching.matchtype import MatchTypeError, load_matchtypes
from orchestrate import run_state
from review.run_report import render_html

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
        loaded = load_matchtypes(home)
    except (MatchTypeError, OSError):  # a bad YAML must not cost the night its report
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
    atomic_write(json_path, json.dumps(report, indent=2, sort_keys=True, default=str), mode=0o644)
    atomic_write(html_path, render_html(report), mode=0o644)
    return {"json": str(json_path), "html": str(html_path), "flags": report["flags"],
            "feeds_failed": report["feeds_failed"]}


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
