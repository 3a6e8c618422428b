"""One check for every name that becomes part of a path the hub writes.

Names reach paths from places an attacker may control: an at-source council's
``extract_id`` (its Parquet column and metadata), a landing file's name, a feed
folder's name, a run id. ``safe_name`` accepts only ``[A-Za-z0-9_.-]`` without a
leading dot (no ``..``, no separator, no hidden file); ``path_inside`` joins safe
names under a base folder and proves, after resolving symlinks, that the result
is still inside it. Every writer of the data home builds its paths with these.
"""

from __future__ import annotations

import re
from pathlib import Path

_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


class UnsafePathError(ValueError):
    """A name or path would leave the folder it belongs in (or is not a plain file name)."""


def is_safe_name(value: object) -> bool:
    return isinstance(value, str) and _SAFE.fullmatch(value) is not None


def safe_name(value: object, what: str = "name") -> str:
    """``value`` if it is a plain file name (letters, digits, ``_ . -``, not starting with a dot)."""
    if not is_safe_name(value):
        shown = repr(value) if len(repr(value)) <= 120 else repr(value)[:117] + "..."
        raise UnsafePathError(f"{what} {shown} is not a safe name (letters, digits, _ . - only, "
                              "at most 200, not starting with a dot)")
    return value  # type: ignore[return-value]


def sanitise_name(value: str, fallback: str = "file") -> str:
    """A safe name made from ``value`` (runs of other characters become ``_``), for names the
    hub derives itself (e.g. from a landing file called ``tenancy_20261102 (1).csv``)."""
    cleaned = _UNSAFE_CHARS.sub("_", value).strip("._")[:160]
    return cleaned if is_safe_name(cleaned) else fallback


def path_inside(base: Path, *parts: str, what: str = "path") -> Path:
    """``base/part/...`` where every part is a safe name and the resolved result stays in ``base``.

    The last part may carry a suffix the caller adds (``f"{extract_id}.parquet"``): it is
    checked whole, so the caller must have checked the name it came from, or use this.
    """
    for part in parts:
        safe_name(part, what)
    path = Path(base).joinpath(*parts)
    ensure_inside(base, path, what)
    return path


def ensure_inside(base: Path, path: Path, what: str = "path") -> Path:
    """``path`` itself if, with symlinks resolved, it lies strictly inside ``base``; else raise."""
    root = Path(base).resolve()
    target = Path(path).resolve()
    if target == root or not target.is_relative_to(root):
        raise UnsafePathError(f"{what} {str(path)!r} resolves outside {root}")
    return Path(path)
