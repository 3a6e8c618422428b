"""Airflow plugin: a "Run report" extra link on every task of the nightly DAG.

The link opens the night's run report in the review app (served to the hub's
operators at ``<COUNCILMATCH_REVIEW_URL>/reports/<run_id>``). It is computed in
the api-server from the DAG run's logical date, the same way the tasks derive
the councilmatch run id, so no task has to push anything for it.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

from councilmatch.environment import environment


class RunReportLink(BaseOperatorLink):
    """``Run report`` button on the task instances of ``nightly_matching``."""

    name = "Run report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from orchestrate import isolated_airflow

        review_url = environment().review_url
        if not review_url or ti_key.dag_id != isolated_airflow.DAG_ID:
            return ""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            dag_run = session.query(DagRun).filter(DagRun.dag_id == ti_key.dag_id,
                                                   DagRun.run_id == ti_key.run_id).one_or_none()
            if dag_run is None:
                return ""
            when = dag_run.logical_date or dag_run.run_after
        return isolated_airflow.report_url(review_url, isolated_airflow.run_id_for(when))


class CouncilmatchPlugin(AirflowPlugin):
    name = "councilmatch"
    global_operator_extra_links = [RunReportLink()]
