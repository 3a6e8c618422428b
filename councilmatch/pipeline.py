"""The nightly job as plain functions: the Airflow DAG and ``councilmatch run`` both call these.

Every function takes the data home and plain values, returns only paths, ids
and counts (safe for XComs), and is idempotent: running it twice for the same
run changes nothing.

    discover_feeds(home)                    -> list[str]          feed ids "<council>/<dataset>"
    ingest_feed(home, feed_id, run_id)      -> dict               ingest + pseudonymise the newest extract
                                                                  (falls back to the last good extract)
    plan_link(home, run_id)                 -> list[dict]         [{"match_type": id, "shard": i, "shards": n}, ...]
                                                                  (also trains each match type's model once)
    link_shard(home, run_id, match_type, shard, shards) -> dict   candidate flags of one shard
    publish_run(home, run_id)               -> dict               flags parquet + review store
    write_report(home, run_id)              -> dict               reports/<run_id>.html and .json
    run_all(home, run_id=None)              -> dict               all of the above in-process
"""

from __future__ import annotations
