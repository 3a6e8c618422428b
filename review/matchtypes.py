"""Match type titles and reasons, in one place.

Prefers the match types the matching stage loads from YAML
(``matching.matchtype.load_matchtypes(home)``); falls back to the title and
reason stored with the flag, then to the id itself.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=8)
def _loaded(home_root: Path) -> dict[str, tuple[str, str]]:
    try:
        from councilmatch.home import Home
        from matching.matchtype import load_matchtypes
        loaded = load_matchtypes(Home(home_root))
    except Exception:  # noqa: BLE001  matching not installed yet, or a bad YAML: use what the flag carries
        return {}
    items = loaded.values() if isinstance(loaded, dict) else loaded
    out = {}
    for m in items:
        mid = getattr(m, "id", None) or getattr(m, "name", None)
        if mid:
            title = getattr(m, "title", None) or str(mid)
            reason = getattr(m, "reason", None) or getattr(m, "description", None) or ""
            out[str(mid)] = (str(title), str(reason).strip())
    return out


def describe(home_root: Path | None, match_type: str, stored_title: str | None = None,
             stored_reason: str | None = None) -> tuple[str, str]:
    """(title, reason) of a match type."""
    found = _loaded(home_root).get(match_type) if home_root is not None else None
    if found:
        return found
    return (stored_title or match_type.replace("_", " ").capitalize(), stored_reason or "")
