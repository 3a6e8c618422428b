"""Key custody: change the KEK, and re-pseudonymise the store after ``keys rotate``.

``change_kek`` re-wraps the keyring and every at-rest data key under a new KEK;
nothing is re-ingested and no data file is rewritten (data files are encrypted
under data keys, which do not change). The council data keys of the vault,
quarantine and archive are wrapped under the keyring, so they move with it.
It can be resumed: a file already under the new KEK is left as it is.

``repseudonymise`` re-makes every stored extract whose tokens were made under an
older key version from its encrypted raw archive, so the store does not mix key
ids: ``keys rotate`` runs it at once, and each night's ingest runs it for a feed
whose newest extract is still under an old key. The clear extract exists only in
memory (``/dev/shm`` where there is one) for the moment ingest reads it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from anonymise import at_rest
from anonymise.at_source import MODE as AT_SOURCE
from anonymise.crypto import seal, unseal
from anonymise.errors import AnonymiseError, TamperedError, WrongKEKError
from anonymise.kek import dev_kek_path, ENV_VAR, KEK, require_kek
from anonymise.keys import keyring_path, load_keyring
from anonymise.manifest import read_manifests, write_manifest
from anonymise.minimise import Policy
from anonymise.pseudonymised import write_pseudonymised
from anonymise.quarantine import read_archived
from anonymise.tokens import ENCODING, pseudonymise
from anonymise.vault import Vault
from councilmatch.fileio import atomic_write
from councilmatch.home import Home
from ingest.extract import ingest_extract
from ingest.feeds import feed_path, load_feed

log = logging.getLogger(__name__)

NEW_KEK_ENV = "COUNCILMATCH_NEW_KEK"


# ---------------------------------------------------------------------------
# KEK change
# ---------------------------------------------------------------------------


def _rewrap_blob(path: Path, old: KEK, new: KEK) -> bytes | None:
    """The blob re-sealed under ``new``; None if it is already under ``new`` (a resumed change)."""
    blob = path.read_bytes()
    try:
        header, plain = unseal(old.key, blob, str(path))
    except TamperedError:
        try:
            unseal(new.key, blob, str(path))
        except TamperedError:
            raise WrongKEKError(f"{path} opens with neither the current nor the new key-encryption key") from None
        return None
    return seal(new.key, plain, header)


def change_kek(home: Home, new: KEK) -> dict[str, Any]:
    """Re-wrap the keyring and all at-rest data keys from the configured KEK to ``new``.

    Every new blob is prepared before any file is replaced, and the keyring goes
    last, so a failure part-way leaves a home that a re-run completes.
    """

    old = require_kek(home)
    if old.key == new.key:
        raise AnonymiseError("the new key-encryption key is the current one")
    files = sorted(at_rest.datakey_dir(home).glob("at-rest.*.enc")) + [keyring_path(home)]
    if not keyring_path(home).exists():
        raise AnonymiseError(f"no keyring at {keyring_path(home)}: nothing to re-wrap")
    staged = [(p, _rewrap_blob(p, old, new)) for p in files]

    changed = []
    for path, blob in staged:
        if blob is not None:
            atomic_write(path, blob)
            changed.append(str(path.relative_to(home.root)))
    dev = dev_kek_path(home)
    if old.source == str(dev):  # the embedded development default: keep it working
        import base64

        atomic_write(dev, base64.b64encode(new.key) + b"\n", mode=0o600)
    at_rest.forget_pyarrow_caches()
    return {"rewrapped": changed, "old_kek_source": old.source,
            "next": (f"set {ENV_VAR} (or the Airflow connection) to the new key-encryption key now; "
                     "the old one no longer opens this home" if old.source != str(dev) else
                     f"development KEK file {dev} now holds the new key")}


# ---------------------------------------------------------------------------
# Re-pseudonymise after rotation
# ---------------------------------------------------------------------------


def archived_path(home: Home, manifest: dict[str, Any]) -> Path:
    council, _, dataset = manifest["feed_id"].partition("/")
    return home.archive / council / dataset / (manifest["extract_file"] + ".enc")


def _private_tmpdir() -> tempfile.TemporaryDirectory:
    shm = Path("/dev/shm")
    return tempfile.TemporaryDirectory(prefix="cm-repseud-", dir=str(shm) if shm.is_dir() else None)


def repseudonymise_manifest(home: Home, keyring, manifest: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """Re-make one stored extract under the active key from its encrypted archive (minimised by ``policy``)."""
    feed_id = manifest["feed_id"]
    archive = archived_path(home, manifest)
    if not archive.exists():
        return {"feed_id": feed_id, "extract_id": manifest["extract_id"], "status": "no_archive"}
    feed = load_feed(feed_path(home, feed_id))
    with _private_tmpdir() as tmp:
        raw = Path(tmp) / manifest["extract_file"]
        fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(read_archived(home, keyring, archive))
        result = ingest_extract(feed, raw)
    if result.extract_id != manifest["extract_id"]:
        raise TamperedError(f"{archive}: archived extract gives id {result.extract_id}, "
                            f"the manifest says {manifest['extract_id']}")
    path = write_pseudonymised(home, pseudonymise(result.accepted, keyring, result.extract_id), policy)
    Vault(home, keyring).store(feed.council, result.extract_id, result.accepted)  # no-op if vaulted
    write_manifest(home, {**manifest, "key_id": keyring.key_id, "encoding": ENCODING, "pseudonymised_path": str(path),
                          "repseudonymised_from": manifest.get("key_id")})
    return {"feed_id": feed_id, "extract_id": result.extract_id, "status": "repseudonymised",
            "from": manifest.get("key_id"), "to": keyring.key_id}


def is_current(manifest: dict[str, Any], key_id: str) -> bool:
    """Whether a stored extract's tokens compare with tonight's: made under ``key_id`` and (the
    hub's own, not a council's at-source file) with this version's encoding
    (``anonymise.tokens.ENCODING``: an upgrade may change a filter's settings or add a column)."""
    return manifest.get("key_id") == key_id and (manifest.get("mode") == AT_SOURCE
                                                 or manifest.get("encoding") == ENCODING)


def stale_manifests(home: Home, key_id: str, feed_id: str | None = None) -> list[dict[str, Any]]:
    """Manifests of stored extracts that are not :func:`is_current`."""
    out = []
    roots = [home.manifests / feed_id] if feed_id else sorted(p for p in home.manifests.glob("*/*") if p.is_dir())
    for folder in roots:
        fid = feed_id or f"{folder.parent.name}/{folder.name}"
        out += [m for m in read_manifests(home, fid) if m.get("pseudonymised_path") and not is_current(m, key_id)]
    return out


def _newest(home: Home, feed_id: str) -> str | None:
    """Extract id of a feed's newest stored extract (the one matching reads), as ``last_good`` picks it."""
    found = [m for m in read_manifests(home, feed_id) if m.get("pseudonymised_path")]
    return max(found, key=lambda m: (m.get("ingested_at", ""), m.get("extract_id", "")))["extract_id"] if found else None


def repseudonymise(home: Home, policy: Policy, feed_id: str | None = None,
                   newest_only: bool = False) -> list[dict[str, Any]]:
    """Re-make every stored extract (of one feed, or all) that is not under the active key.

    An older, superseded extract whose archive retention already purged is reported as
    ``superseded`` (matching reads only each feed's newest), not as a failure. ``policy``:
    the store's minimisation (``matching.minimisation.store_policy``).
    """
    keyring = load_keyring(home)
    done = []
    newest: dict[str, str | None] = {}
    for manifest in stale_manifests(home, keyring.key_id, feed_id):
        fid = manifest["feed_id"]
        if fid not in newest:
            newest[fid] = _newest(home, fid)
        is_newest = manifest["extract_id"] == newest[fid]
        if newest_only and not is_newest:
            continue
        if not is_newest and not archived_path(home, manifest).exists():
            done.append({"feed_id": fid, "extract_id": manifest["extract_id"], "status": "superseded"})
            continue
        if manifest.get("mode") == AT_SOURCE:  # tokens made by the council: only it can re-make them
            done.append({"feed_id": manifest["feed_id"], "extract_id": manifest["extract_id"],
                         "status": "at_source_resend"})
            continue
        try:
            done.append(repseudonymise_manifest(home, keyring, manifest, policy))
        except Exception as exc:  # noqa: BLE001 - one feed must not stop the others; reported
            log.warning("re-pseudonymising %s failed: %s", manifest.get("feed_id"), exc)
            done.append({"feed_id": manifest.get("feed_id"), "extract_id": manifest.get("extract_id"),
                         "status": "failed", "error": str(exc)})
    return done
