"""The nightly cross-council matching run (Airflow 3, TaskFlow).

    discover_feeds ─► ingest_feed[feed] (mapped) ─► plan_link ─► link_shard[match type, shard] (mapped)
                                                                        ─► publish_run ─► write_report

Each task is one call into ``orchestrate.pipeline``; all business logic lives
there, so ``councilmatch run`` does the same night in one process.

Incremental by default. ``plan_link`` reuses each match type's saved model and links only
the records added, changed or removed since the last linked run (``matching.incremental``);
the DAG params ``full`` and ``retrain`` (trigger with config) force a full re-link or
re-training, as ``councilmatch run --full`` / ``--retrain`` do.

Failure isolation. ``pipeline.ingest_feed`` never raises for a bad extract: it
falls back to the feed's last good extract and records the status
("failed" / "fell_back"), which the run report shows. Anything else it raises
(a full disk, a lost mount) is retried with exponential back-off; if a feed's
ingest still fails, ``plan_link`` runs anyway once every ingest is done and at
least one succeeded (``all_done_min_one_success``), and the report task lists
the feeds that returned nothing. Publishing needs every shard: it runs when
none failed (``none_failed``, so a night with no shard to link still publishes
its empty flag set); a failed shard fails the run, and clearing the failed task
re-runs only that shard (every task is idempotent; the run id comes
from the DAG run's logical date, which a clear keeps).

Losing a worker. A Celery worker that dies mid-task (killed, machine lost) held only that
task (Airflow's Celery defaults: ``task_acks_late``, prefetch multiplier 1); its heartbeats
stop, the scheduler fails that try after ``[scheduler] task_instance_heartbeat_timeout``
and the retries below run it on another worker. A shard writes its output atomically at
the end, so a killed try leaves nothing half-written (tests/airflow/test_native_topology.py
kills a worker mid-shard and compares the flags with a single-process run).

Secrets. The key-encryption key is read inside the task that needs it, from
``COUNCILMATCH_KEK`` in the worker's environment or the password of the
``councilmatch_kek`` Airflow connection (``anonymise.kek``); no task returns it,
so it can never become an XCom. XComs carry only paths, ids, counts and error texts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from councilmatch.environment import environment
from councilmatch.home import Home
from orchestrate import isolated_airflow

isolated_airflow.use_airflow_kek()  # tasks may read the KEK from the connection councilmatch_kek

#: Pseudonymised data sets and flags, as Airflow Assets: downstream DAGs
#: (exports, dashboards) can be scheduled on them.
PSEUDONYMISED = Asset(name="councilmatch_pseudonymised", uri="councilmatch://store/pseudonymised")
FLAGS = Asset(name="councilmatch_flags", uri="councilmatch://store/flags")

#: 01:30 London time, after the councils' extracts land; ``COUNCILMATCH_NIGHTLY_SCHEDULE``
#: overrides it (a cron, or "manual" for triggered runs only).
SCHEDULE = environment().nightly_schedule

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "councilmatch",
    "retries": environment().task_retries,
    "retry_delay": timedelta(seconds=environment().retry_delay_seconds),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
}


def _run() -> tuple[Home, str]:
    """The data home and this DAG run's councilmatch run id."""
    context = get_current_context()
    dag_run = context["dag_run"]
    return isolated_airflow.task_home(), isolated_airflow.run_id_for(dag_run.logical_date or dag_run.run_after)


# Tasks returning a dict set multiple_outputs=False: one XCom per task, not one per key.
@dag(
    dag_id="nightly_matching",
    schedule=None if SCHEDULE == "manual" else SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["councilmatch"],
    doc_md=__doc__,
    # a night links only what changed since the last run; trigger with {"full": true} to re-link
    # the whole pool, {"retrain": true} to re-train every match type's model
    params={
        "full": Param(False, type="boolean", description="Re-link the whole pool, not only what changed."),
        "retrain": Param(False, type="boolean", description="Re-train every match type's model tonight."),
    },
)
def nightly_matching() -> None:
    @task
    def discover_feeds() -> list[str]:
        """Read the feed definitions now, so a new feed file needs no DAG change."""
        from orchestrate import pipeline

        return pipeline.discover_feeds(isolated_airflow.task_home())

    # Mapped task instances are named in Airflow's UI by feed ("E09000007/tenancy (Camden)") and by
    # match type and shard ("tenancy_two_boroughs 1/4"), not by map index.
    @task(outlets=[PSEUDONYMISED], map_index_template="{{ feed_label }}", multiple_outputs=False)
    def ingest_feed(feed_id: str) -> dict[str, Any]:
        from orchestrate import pipeline
        from councilmatch.councils import council_name

        home, run_id = _run()
        council = feed_id.split("/", 1)[0]
        get_current_context()["feed_label"] = f"{feed_id} ({council_name(council)})"
        outcome = pipeline.ingest_feed(home, feed_id, run_id)
        get_current_context()["outlet_events"][PSEUDONYMISED].extra = {
            "feed_id": feed_id, "status": outcome.get("status"), "extract_id": outcome.get("extract_id"),
        }
        return outcome

    @task(trigger_rule="all_done_min_one_success")
    def plan_link() -> list[dict[str, Any]]:
        from orchestrate import pipeline

        home, run_id = _run()
        params = get_current_context()["params"]
        return pipeline.plan_link(home, run_id, full=bool(params.get("full", False)),
                                  retrain=bool(params.get("retrain", False)))

    @task(map_index_template="{{ shard_label }}", multiple_outputs=False)
    def link_shard(match_type: str, shard: int, shards: int) -> dict[str, Any]:
        from orchestrate import pipeline

        home, run_id = _run()
        get_current_context()["shard_label"] = f"{match_type} {shard + 1}/{shards}"
        return pipeline.link_shard(home, run_id, match_type, shard, shards)

    @task(outlets=[FLAGS], multiple_outputs=False, trigger_rule="none_failed")
    def publish_run() -> dict[str, Any]:
        from orchestrate import pipeline

        home, run_id = _run()
        result = pipeline.publish_run(home, run_id)
        get_current_context()["outlet_events"][FLAGS].extra = {"run_id": run_id, "flags": result.get("flags")}
        return result

    @task(multiple_outputs=False)
    def write_report(feeds: list[str]) -> dict[str, Any]:
        from orchestrate import pipeline
        from orchestrate import run_state

        home, run_id = _run()
        report = pipeline.write_report(home, run_id)
        # A feed whose ingest task itself failed (after its retries) recorded no outcome: name it too.
        recorded = {f["feed_id"] for f in run_state.load_feeds(home, run_id)}
        report["feeds_without_outcome"] = sorted(set(feeds) - recorded)
        return report

    feeds = discover_feeds()
    ingested = ingest_feed.expand(feed_id=feeds)
    shards = plan_link()
    ingested >> shards
    linked = link_shard.expand_kwargs(shards)
    published = publish_run()
    linked >> published
    published >> write_report(feeds)


nightly_matching()
