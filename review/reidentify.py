"""Re-identification of an investigator's own council's record, from the vault only.

The vault (``anonymise.vault``) decrypts and keeps its own audit; the review app
also audits each view in its chain. The vault is reopened when the keyring file
changes (``keys rotate``), so records sealed under a new key are readable without
restarting the app. Tests inject a fake through the app's
``reidentifier`` setting where the vault is not wanted.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from anonymise.keys import keyring_path, load_keyring
from anonymise.vault import Vault
from councilmatch.home import Home

#: (council, record_id, actor, reason, dataset=...) -> {field: clear value or None}
Reidentifier = Callable[..., dict[str, str | None]]


RETRY_SECONDS = 60.0


class VaultUnavailable(Exception):
    pass


def vault_reidentifier(home_root: Path) -> Reidentifier:
    """Bind the real vault of a data home (opened once; ``reidentify.warm()`` opens it ahead of use,
    since finding the key-encryption key may import Airflow, which takes seconds)."""
    state: dict = {}
    lock = threading.Lock()

    def keyring_stamp() -> tuple[int, int, int] | None:
        try:
            st = os.stat(keyring_path(Home(home_root)))
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def open_vault() -> None:
        stamp = keyring_stamp()
        with lock:
            if state.get("stamp") != stamp:  # new keyring (rotated): open the vault afresh
                state.pop("vault", None)
                state.pop("failed", None)
            if "vault" in state:
                return
            failed = state.get("failed")
            if failed and time.monotonic() - failed[0] < RETRY_SECONDS:
                raise failed[1]  # don't search for the KEK again on every page view
            try:
                home = Home(home_root)
                state["vault"] = Vault(home, load_keyring(home))
                state["stamp"] = stamp
            except Exception as exc:  # noqa: BLE001
                error = VaultUnavailable(f"The vault could not be opened ({type(exc).__name__}).")
                state["failed"] = (time.monotonic(), error)
                state["stamp"] = stamp
                raise error from exc

    def warm() -> None:
        try:
            open_vault()
        except VaultUnavailable:
            pass  # reported on the pair page when someone needs it

    def reidentify(council: str, record_id: str, actor: str, reason: str,
                   dataset: str | None = None) -> dict[str, str | None]:
        open_vault()
        try:
            return state["vault"].reidentify(council, record_id, actor, reason, dataset=dataset)
        except Exception as exc:  # noqa: BLE001
            raise VaultUnavailable(f"The record is not in the vault ({type(exc).__name__}).") from exc

    reidentify.warm = warm  # type: ignore[attr-defined]
    return reidentify
