"""Where the key-encryption key (KEK) comes from. Never from the repo, never logged.

Order: ``COUNCILMATCH_KEK`` (base64 of 32 bytes), then the sources the caller
added with :func:`add_kek_source` (the command line and the DAGs add the password
of the Airflow connection ``councilmatch_kek``, when Airflow is configured; see
``orchestrate.isolated_airflow``), then — for a development home only — the file
``home/keys/dev-kek``. This module imports no Airflow: the KEK is passed in.

The development KEK sits beside the keyring it protects, so it protects nothing
against anyone who can read the home. It is therefore an explicit opt-in
(``keys init --dev-kek`` or ``COUNCILMATCH_DEV_KEK=1``; ``councilmatch demo``
opts in), and production refuses it: with ``COUNCILMATCH_PRODUCTION=1`` (set by
``docker-compose.yml``) neither writing nor reading a dev KEK is allowed. A
``COUNCILMATCH_KEK`` that is set but empty (what compose passed when ``.env``
lacked it) is an error, never "no KEK, fall back".
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from anonymise.crypto import KEY_BYTES, new_key
from anonymise.errors import DevKEKRefusedError, InvalidKEKError, MissingKEKError
from councilmatch.environment import environment, variable
from councilmatch.fileio import atomic_write
from councilmatch.home import Home
from councilmatch.settings import load_settings

ENV_VAR = variable("kek")
AIRFLOW_CONN_ID = "councilmatch_kek"
DEV_KEK_NAME = "dev-kek"
DEV_OPT_IN_VAR = variable("dev_kek")
PRODUCTION_VAR = variable("production")


def is_production(home: Home | None = None) -> bool:
    """``COUNCILMATCH_PRODUCTION`` is true (docker-compose.yml sets it), or the home's
    ``settings.yaml`` says ``production: true``."""
    if environment().production:
        return True
    if home is not None and home.settings_file.exists():

        return load_settings(home).production
    return False


def dev_kek_opted_in() -> bool:
    return environment().dev_kek


@dataclass(frozen=True)
class KEK:
    key: bytes
    #: where it came from, for messages ("COUNCILMATCH_KEK", "Airflow connection ...", a path)
    source: str

    def __repr__(self) -> str:  # never print the key
        return f"KEK(source={self.source!r})"


def dev_kek_path(home: Home) -> Path:
    return home.keys / DEV_KEK_NAME


def decode_kek(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKEKError(f"key-encryption key from {source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise InvalidKEKError(
            f"key-encryption key from {source} decodes to {len(key)} bytes; expected {KEY_BYTES} "
            "(generate one with: python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\")"
        )
    return key


#: A further place a KEK may come from: returns (base64 text, where it came from) or None.
KEKSource = Callable[[], "tuple[str, str] | None"]
_sources: list[KEKSource] = []


#: How long, within one process, what an added source gave (a KEK, or none) is used again before
#: the source is asked again: a night asks for the KEK on every encrypted read and write (about a
#: thousand times), and each ask of the Airflow connection is a round trip to Airflow. Any change
#: of the process environment asks again at once.
SOURCE_SECONDS = 60.0
_answers: dict[tuple[KEKSource, int], tuple[float, "tuple[str, str] | None"]] = {}


def _ask(source: KEKSource) -> "tuple[str, str] | None":
    key = (source, hash(frozenset(os.environ.items())))
    kept = _answers.get(key)
    if kept is None or time.monotonic() - kept[0] > SOURCE_SECONDS:
        if len(_answers) > 64:
            _answers.clear()
        kept = _answers[key] = (time.monotonic(), source())
    return kept[1]


def add_kek_source(source: KEKSource) -> None:
    """Consult ``source`` after ``COUNCILMATCH_KEK`` and before the development key file.

    The orchestration layer passes the KEK in this way (``orchestrate.isolated_airflow.use_airflow_kek``
    adds the password of the Airflow connection ``councilmatch_kek``), so anonymise never imports Airflow.
    """
    if source not in _sources:
        _sources.append(source)


def find_kek(home: Home) -> KEK | None:
    """The configured KEK, or None when there is none."""
    secret = environment().kek
    if secret is not None:
        env = secret.get_secret_value()
        if not env.strip():
            raise MissingKEKError(
                f"{ENV_VAR} is set but empty (docker compose passes an empty value when .env lacks it): "
                "set it to base64 of 32 random bytes; refusing to fall back to any other key")
        return KEK(decode_kek(env, ENV_VAR), ENV_VAR)
    for extra in _sources:
        found = _ask(extra)
        if found:
            text, source = found
            return KEK(decode_kek(text, source), source)
    path = dev_kek_path(home)
    if path.exists():
        if is_production(home):
            raise DevKEKRefusedError(
                f"{path} is a development key-encryption key and this is production ({PRODUCTION_VAR} or "
                "settings.yaml production: true): production refuses it. "
                f"Set {ENV_VAR} (or the Airflow connection {AIRFLOW_CONN_ID!r}) and re-key the home")
        return KEK(decode_kek(path.read_text(), str(path)), str(path))
    return None


def require_kek(home: Home) -> KEK:
    kek = find_kek(home)
    if kek is None:
        raise MissingKEKError(
            f"no key-encryption key: set {ENV_VAR} (base64 of 32 random bytes) or the password of "
            f"the Airflow connection {AIRFLOW_CONN_ID!r}; the keyring in {home.keys} cannot be opened without it"
        )
    return kek


def write_dev_kek(home: Home) -> KEK:
    """Create the development KEK file (mode 0600). Only ``keys init`` on a fresh home, opted in, calls this."""
    if is_production(home):
        raise DevKEKRefusedError(f"{PRODUCTION_VAR} or settings.yaml production: true is set: production refuses a development key-encryption key; "
                                 f"set {ENV_VAR}")
    path = dev_kek_path(home)
    home.keys.mkdir(parents=True, exist_ok=True)
    os.chmod(home.keys, 0o700)
    atomic_write(path, base64.b64encode(new_key()) + b"\n", mode=0o600)
    return KEK(decode_kek(path.read_text(), str(path)), str(path))
