"""What the store's publishing, decisions and queries share: errors, involved councils, queue keys."""

from __future__ import annotations

from councilmatch.councils import CENTRAL

#: ids per ``IN (...)`` query: under SQLite's bound-parameter limit
CHUNK = 900

#: Flag fields copied onto each council's queue entry (status and first_seen last: set once / on change).
QUEUE_KEYS = ("priority", "match_probability", "match_type", "run_id", "first_seen", "status")


class ReviewError(Exception):
    """A request the store refuses; the message is safe to show to the user."""


class NotFound(ReviewError):
    """The flag does not exist *or* is not the user's council's (the two are never told apart)."""


class ConflictError(ReviewError):
    """A save based on a stale version of the flag (optimistic locking)."""


def involved_councils(left_council: str, right_council: str) -> tuple[str, ...]:
    """The councils that review a flag: its two sides, less the central deceased feed (nobody reviews for it)."""
    return tuple(c for c in dict.fromkeys((left_council, right_council)) if c != CENTRAL)
