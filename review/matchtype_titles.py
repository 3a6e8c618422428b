"""Match type titles and reasons as the review app shows them.

Prefers the match types the matching stage loads from YAML
(``matching.matchtype.load_matchtypes(home)``); when those cannot be read (a broken
YAML in the home), falls back to the title and reason stored with the flag, then to
the id itself. (The ids themselves: ``councilmatch.matchtype_ids``; the YAML model:
``matching.matchtype``.)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from councilmatch.home import Home
from matching.matchtype import MatchTypeError, load_matchtypes


@lru_cache(maxsize=8)
def _loaded(home_root: Path) -> dict[str, tuple[str, str]]:
    try:
        loaded = load_matchtypes(Home(home_root))
    except (MatchTypeError, OSError):  # a broken YAML in the home: use what the flag carries
        return {}
    return {m.id: (m.title or m.id, (m.reason or "").strip()) for m in loaded.values()}


def describe(home_root: Path | None, match_type: str, stored_title: str | None = None,
             stored_reason: str | None = None) -> tuple[str, str]:
    """(title, reason) of a match type."""
    found = _loaded(home_root).get(match_type) if home_root is not None else None
    if found:
        return found
    return (stored_title or match_type.replace("_", " ").capitalize(), stored_reason or "")
