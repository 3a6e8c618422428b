"""Re-identification of an investigator's own council's record, from the vault only.

The vault (``anonymise.vault``) decrypts and keeps its own audit; the review app
also audits each view in its chain. Tests inject a fake through the app's
``reidentifier`` setting where the vault is not wanted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

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

    def open_vault() -> None:
        with lock:
            if "vault" in state:
                return
            failed = state.get("failed")
            if failed and time.monotonic() - failed[0] < RETRY_SECONDS:
                raise failed[1]  # don't search for the KEK again on every page view
            try:
                from anonymise.keys import load_keyring
                from anonymise.vault import Vault
                from councilmatch.home import Home
                home = Home(home_root)
                state["vault"] = Vault(home, load_keyring(home))
            except Exception as exc:  # noqa: BLE001
                error = VaultUnavailable(f"The vault could not be opened ({type(exc).__name__}).")
                state["failed"] = (time.monotonic(), error)
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
