"""Every environment variable councilmatch reads, in one validated object.

``environment()`` sees the process environment as it is at each call (tests and the
command line change it at run time; it parses again only when a variable changed). No other module reads a ``COUNCILMATCH_*`` variable
itself; the only other variables read are other tools' own (``AIRFLOW_HOME``,
``AIRFLOW_CONN_COUNCILMATCH_KEK``, ``XDG_CONFIG_HOME``) and the one an operator names on
the command line (``keys change-kek --new-kek-env``). The
table in docs/operations.md ("Environment variables") is generated from this model
(``python -m councilmatch.environment``), and a test keeps the two equal.

Per-home settings that are not secrets and not per-process live in ``settings.yaml``
instead (``councilmatch.settings.HomeSettings``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_TRUE = {"1", "true", "yes", "on"}


def _flag(value: Any) -> bool:
    """A switch is on only for 1/true/yes/on (any case); anything else, empty included, is off."""
    return value if isinstance(value, bool) else str(value or "").strip().lower() in _TRUE


Flag = Annotated[bool, BeforeValidator(_flag)]
#: An optional value: set but empty counts as unset (``COUNCILMATCH_HOME=`` means the default home).
Unset = BeforeValidator(lambda value: None if value == "" else value)


class Environment(BaseSettings):
    """``COUNCILMATCH_<FIELD>`` for each field below (secrets are never printed)."""

    model_config = SettingsConfigDict(env_prefix="COUNCILMATCH_", case_sensitive=False, extra="ignore",
                                      frozen=True)

    # -- the data home and its keys ------------------------------------------------------------
    home: Annotated[Path | None, Unset] = Field(None, description="The data home when `--home` is not given "
                                                "(else `./councilmatch-data`).")
    kek: SecretStr | None = Field(None, description="The key-encryption key: base64 of 32 random bytes. "
                                                    "Set but empty is an error, never a fallback.")
    new_kek: Annotated[SecretStr | None, Unset] = Field(None, description="The new KEK for `keys change-kek` "
                                                        "(its `--new-kek-env` option names another variable).")
    dev_kek: Flag = Field(False, description="Opt in to a development KEK file beside the keyring "
                                             "(development homes only; production refuses it).")
    production: Flag = Field(False, description="This is production: development KEKs are refused "
                                                "(as `production: true` in settings.yaml).")
    # -- the review app -------------------------------------------------------------------------
    review_db_url: Annotated[str | None, Unset] = Field(None, description="The review store's database URL "
                                                        "(default: SQLite `review.db` in the home).")
    review_secret: Annotated[SecretStr | None, Unset] = Field(None, description="The review app's session-signing secret "
                                                              "(default: a random key kept in the home, 0600).")
    review_insecure_cookies: Flag = Field(False, description="Session cookies without `Secure` (loopback "
                                                             "only; set by `review serve --insecure-cookies`).")
    review_trusted_proxies: str = Field("", description="Comma-separated addresses or networks of the TLS "
                                                        "proxy whose X-Forwarded-For the sign-in limits trust.")
    review_url: Annotated[str | None, Unset] = Field(None, description="The review app's URL, for the run-report links "
                                                     "Airflow shows on a DAG run.")
    audit_key: Annotated[SecretStr | None, Unset] = Field(None, description="The review audit chain's key, base64 "
                                                          "(default: `keys/review-audit.key` in the home).")
    # -- Airflow --------------------------------------------------------------------------------
    secrets_dir: Annotated[Path | None, Unset] = Field(None, description="Where Airflow's per-home secrets live, outside the "
                                                       "home (default: `~/.config/councilmatch/airflow`).")
    airflow_secrets_dir: Annotated[Path | None, Unset] = Field(None, description="Older name of `COUNCILMATCH_SECRETS_DIR`, "
                                                               "still accepted.")
    nightly_schedule: str = Field("30 1 * * *", description="The nightly DAG's schedule: a cron "
                                                            "(London time), or `manual`.")
    task_retries: int = Field(3, ge=0, description="Retries of each nightly task.")
    retry_delay_seconds: int = Field(120, ge=0, description="Seconds between a task's retries.")
    worker_name: Annotated[str | None, Unset] = Field(None, description="This worker's name in Airflow "
                                                      "(`hostname_callable`; default: the FQDN).")
    test_shard_gate: Annotated[Path | None, Unset] = Field(None, description="Test hook, never set in production: "
                                                           "a folder where one worker holds a link shard in flight "
                                                           "for the worker-kill test.")


SECRET_FIELDS = frozenset(name for name, f in Environment.model_fields.items() if "SecretStr" in str(f.annotation))


def environment() -> Environment:
    """The environment as it is now (parsed again only when a ``COUNCILMATCH_*`` variable changed)."""
    return _parsed(tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("COUNCILMATCH_"))))


@lru_cache(maxsize=16)
def _parsed(snapshot: tuple[tuple[str, str], ...]) -> Environment:  # noqa: ARG001  (the cache key)
    return Environment()


def variable(field: str) -> str:
    """The environment variable behind a field: ``variable("kek") == "COUNCILMATCH_KEK"``."""
    if field not in Environment.model_fields:
        raise KeyError(field)
    return "COUNCILMATCH_" + field.upper()


def _default(field: str) -> str:
    value = Environment.model_fields[field].default
    if value in (None, ""):
        return "(unset)"
    if value is False:
        return "off"
    return f"`{value}`"


def markdown_table() -> str:
    """The table of docs/operations.md, "Environment variables"."""
    rows = ["| variable | default | what |", "|---|---|---|"]
    for name, info in Environment.model_fields.items():
        secret = " Secret: never logged." if name in SECRET_FIELDS else ""
        rows.append(f"| `{variable(name)}` | {_default(name)} | {info.description}{secret} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
