"""Write one feed's outputs as one commit: stage every file, rename them all at the end, roll back on failure.

A feed writes its vault entry, its quarantine, its pseudonymised file and its
manifest. If any of these fails (a bad name, a full disk, an exception), none of
them may stay behind: a pseudonymised file without its vault entry would raise
flags nobody can re-identify. Inside ``with staged():`` the writers
(``anonymise.crypto.atomic_write``, ``anonymise.store.write_table``,
``ingest.manifest.write_manifest``) leave their finished temporary file (hidden,
``.tmp``) in place and register it here; on leaving the block without error
every file is renamed over its final name in write order, and a failure during
the renames restores what was there before. An exception inside the block
deletes the temporary files, so the home is as it was.

Write order matters for a crash in the middle of the renames (a few
milliseconds): the feed step writes the vault and the quarantine before the
pseudonymised file, and the manifest (the commit marker) last, so a crash can
leave a vault entry without a pseudonymised file (harmless) but never the reverse.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

_active: ContextVar["Staging | None"] = ContextVar("councilmatch_staging", default=None)


class Staging:
    """The temporary files of one commit, in write order."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def add(self, tmp: Path, final: Path) -> None:
        self.pending.append((Path(tmp), Path(final)))

    @property
    def targets(self) -> list[Path]:
        return [final for _, final in self.pending]

    def discard(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        self.pending.clear()

    def commit(self) -> None:
        """Rename every staged file over its final name; on any failure put everything back."""
        done: list[tuple[Path, Path | None]] = []
        tag = secrets.token_hex(4)
        try:
            for tmp, final in self.pending:
                backup = None
                if final.is_file() or final.is_symlink():
                    backup = final.with_name(f".{final.name}.{tag}.bak")
                    os.replace(final, backup)
                try:
                    os.replace(tmp, final)
                except BaseException:
                    if backup is not None:
                        os.replace(backup, final)
                    raise
                done.append((final, backup))
        except BaseException:
            for final, backup in reversed(done):  # the renames that happened, undone
                if backup is not None:
                    os.replace(backup, final)
                else:
                    final.unlink(missing_ok=True)
            self.discard()
            raise
        for _, backup in done:
            if backup is not None:
                try:
                    backup.unlink(missing_ok=True)
                except OSError:  # committed already; a stale hidden backup is harmless
                    pass
        self.pending.clear()


def place(tmp: Path, final: Path) -> None:
    """Give a finished temporary file its final name: now, or at the commit of the active ``staged()``."""
    staging = _active.get()
    if staging is None:
        os.replace(tmp, final)
    else:
        staging.add(Path(tmp), Path(final))


@contextmanager
def staged() -> Iterator[Staging]:
    """Everything written inside the block appears at once at its end, or not at all."""
    staging = Staging()
    token = _active.set(staging)
    try:
        yield staging
    except BaseException:
        staging.discard()
        raise
    finally:
        _active.reset(token)
    staging.commit()
