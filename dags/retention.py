"""Weekly retention purge (Airflow 3, TaskFlow): one call into ``orchestrate.retention.purge``.

Deletes raw archives, quarantine, vault files and closed flags past the days set
in ``settings.yaml`` (``retention:``); the same as ``councilmatch retention purge``.
The XCom carries counts and the report's path only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task

from orchestrate import isolated_airflow

isolated_airflow.use_airflow_kek()  # the purge may read the KEK from the connection councilmatch_kek


@dag(
    dag_id="retention_purge",
    schedule="0 4 * * 0",  # Sundays 04:00 London time, clear of the nightly run
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "councilmatch", "retries": 2, "retry_delay": timedelta(minutes=10),
                  "retry_exponential_backoff": 2.0},
    tags=["councilmatch"],
    doc_md=__doc__,
)
def retention_purge() -> None:
    @task(multiple_outputs=False)
    def purge() -> dict[str, Any]:
        from orchestrate import retention

        return retention.purge(isolated_airflow.task_home())

    purge()


retention_purge()
