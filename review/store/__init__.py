"""The review store: publishing (with the retention purge), decisions, queries.

* ``review.store.publish`` — the pipeline's side: ``publish_flags`` (an upsert that writes
  only changed flags), ``suppressed_flags``, ``purge_closed_flags``.
* ``review.store.decisions`` — investigators' changes: ``record_decision``, ``assign``, ``get_item``.
* ``review.store.queries`` — the web app's reads: ``queue``, ``queue_all``, ``filter_choices``,
  ``dashboard``, ``evidence_of``, ``decisions_of``.
* ``review.store.sealing`` — the sealed columns (notes, amounts, evidence) under the hub's keys.

*Involved councils* of a flag are its left and right councils, less the central
deceased-persons feed (nobody reviews on its behalf).
"""

from review.db import migrate
from review.store.common import QUEUE_KEYS, ConflictError, NotFound, ReviewError, involved_councils
from review.store.decisions import assign, get_item, record_decision
from review.store.publish import (
    CONTENT, OPTIONAL_COLUMNS, REFRESHED, publish_flags, purge_closed_flags, suppressed_flags,
)
from review.store.queries import (
    Decision, QueueFilter, dashboard, decision_of, decisions_of, evidence_of, filter_choices, queue, queue_all,
)
from review.store.sealing import Sealer, sealer_for

__all__ = [
    "CONTENT", "OPTIONAL_COLUMNS", "QUEUE_KEYS", "REFRESHED", "ConflictError", "Decision", "NotFound",
    "QueueFilter", "ReviewError", "Sealer", "assign", "dashboard", "decision_of", "decisions_of", "evidence_of",
    "filter_choices", "get_item", "involved_councils", "migrate", "publish_flags", "purge_closed_flags",
    "queue", "queue_all", "record_decision", "sealer_for", "suppressed_flags",
]
