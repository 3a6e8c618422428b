"""The council's dashboard: flags per run and match type, statuses, outcomes, amounts, trend."""

from __future__ import annotations

from fastapi import APIRouter, Request

from review import store
from review.charts import bar_chart, stacked_bar_chart
from review.deps import CouncilUserDep, DbDep, SealerDep, SettingsDep, render
from review.matchtype_titles import describe

router = APIRouter()


@router.get("/dashboard")
def dashboard_page(request: Request, user: CouncilUserDep, db: DbDep, settings: SettingsDep,
                   sealer: SealerDep):  # noqa: ANN201
    data = store.dashboard(db, user.council, sealer)
    runs = sorted({r for r, _, _ in data["by_run_type"]})[-12:]
    types = sorted({t for _, t, _ in data["by_run_type"]})
    titles = {t: describe(settings.home_root, t)[0] for t in types}
    series = {titles[t]: [0.0] * len(runs) for t in types}
    for run, t, n in data["by_run_type"]:
        if run in runs:
            series[titles[t]][runs.index(run)] += n
    outcomes = {o: (n, amt) for o, n, amt in data["outcomes"]}
    statuses = dict(data["by_status"])
    return render(request, "dashboard.html", {
        "title": "Dashboard",
        "total": sum(statuses.values()),
        "statuses": statuses,
        "outcomes": outcomes,
        "fraud_amount": outcomes.get("fraud", (0, 0.0))[1],
        "per_run": stacked_bar_chart(runs, series, "Flags per run (the run that raised or last changed each flag), by match type"),
        "status_chart": bar_chart([(s.replace("_", " ").capitalize(), statuses.get(s, 0))
                                   for s in ("new", "in_review", "closed")], "Flags by status"),
        "outcome_chart": bar_chart([(o.replace("_", " ").capitalize(), n) for o, (n, _) in outcomes.items()],
                                   "Outcomes recorded by your council"),
        "amount_chart": bar_chart([(o.replace("_", " ").capitalize(), a) for o, (_, a) in outcomes.items() if a],
                                  "Amounts recorded by outcome", "£{:,.0f}"),
        "trend_chart": bar_chart([(d, n) for d, n in data["trend"][-14:]], "New flags by date first raised"),
    }, user=user)
