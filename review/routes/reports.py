"""Run reports for the hub's operators: ``/reports`` and ``/reports/<run_id>``.

A run report spans every council (per-feed counts, quarantine reasons, flags per
match type, models), so it is shown to hub-level roles only, never to a council's
investigators, supervisors or admins. It holds counts, ids and model parameters only:
no flag, no record, no clear data. The page is the report file's own content
(``review.run_report.render_body``), rebuilt from ``reports/<run_id>.json``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup

from councilmatch.home import Home
from review.run_report import list_reports, load_report, render_body
from review import store
from review.deps import SettingsDep, render, require_role
from review.models import User

router = APIRouter(prefix="/reports")

#: Roles that may read run reports (hub-level roles; a council's users get 403). The
#: council pages refuse these roles in turn (``CouncilUserDep`` in review/deps.py).
REPORT_ROLES: tuple[str, ...] = ("operator", "hub_admin")


require_hub_user = require_role(
    *REPORT_ROLES, message="Run reports span every council: only the hub's operators and hub admins can read them.")
HubUser = Annotated[User, Depends(require_hub_user)]


def _home(settings: SettingsDep) -> Home:
    if settings.home_root is None:
        raise store.NotFound("This review app has no data home, so no run reports.")
    return Home(settings.home_root)


@router.get("")
def reports_page(request: Request, user: HubUser, settings: SettingsDep):  # noqa: ANN201
    runs = list_reports(_home(settings))
    return render(request, "reports.html", {"title": "Run reports", "runs": runs}, user=user)


@router.get("/{run_id}")
def report_page(request: Request, run_id: str, user: HubUser, settings: SettingsDep):  # noqa: ANN201
    try:
        report = load_report(_home(settings), run_id)
    except FileNotFoundError as exc:
        raise store.NotFound(f"There is no run report for {run_id!r}.") from exc
    return render(request, "report.html", {"title": f"Run {report['run_id']}", "run_id": report["run_id"],
                                           "body": Markup(render_body(report))}, user=user)
