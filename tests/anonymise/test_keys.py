"""Keyring: KEK handling, subkeys per purpose, rotation, CLI messages."""

from __future__ import annotations

import base64
import os
import stat

import pandas as pd
import pytest
from typer.testing import CliRunner

from anonymise import kek
from anonymise.errors import InvalidKEKError, KeyringMissingError, MissingKEKError, UnknownKeyError, WrongKEKError
from anonymise.keys import init_keys, key_status, keyring_path, load_keyring, rotate_keys
from anonymise.tokens import token_values
from councilmatch.home import Home
from orchestrate import isolated_airflow
from orchestrate.cli import app


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_subkeys_differ_by_purpose_and_key(home: Home) -> None:
    ring = load_keyring(home)
    assert ring.subkey("name") != ring.subkey("postcode")
    assert ring.subkey("name") == ring.subkey("name", "k1")
    rotate_keys(home)
    ring2 = load_keyring(home)
    assert ring2.key_id == "k2"
    assert ring2.subkey("name") != ring2.subkey("name", "k1")
    with pytest.raises(UnknownKeyError, match="k9"):
        ring2.subkey("name", "k9")


def test_same_value_token_differs_by_purpose_and_key_but_is_stable(home: Home) -> None:
    value = pd.Series(["SMITH"])
    ring = load_keyring(home)
    as_name = token_values(value, ring.subkey("name"))[0]
    as_phonetic = token_values(value, ring.subkey("name_phonetic"))[0]
    assert as_name != as_phonetic
    # same key + purpose -> same token, also after reopening the keyring (a new "run")
    assert token_values(value, load_keyring(home).subkey("name"))[0] == as_name
    rotate_keys(home)
    assert token_values(value, load_keyring(home).subkey("name"))[0] != as_name
    # another hub (another keyring) gives another token
    other = Home(home.root.parent / "other").ensure()
    init_keys(other)
    assert token_values(value, load_keyring(other).subkey("name"))[0] != as_name


def test_wrong_kek_is_refused_clearly_and_writes_nothing(home: Home, monkeypatch, helpers) -> None:
    before = {p: (home.root / p).read_bytes() for p in _files(home.root)}
    monkeypatch.setenv("COUNCILMATCH_KEK", helpers.new_kek())
    with pytest.raises(WrongKEKError, match="does not decrypt with the key-encryption key from COUNCILMATCH_KEK"):
        load_keyring(home)
    with pytest.raises(WrongKEKError):
        rotate_keys(home)
    with pytest.raises(WrongKEKError):
        init_keys(home)
    after = {p: (home.root / p).read_bytes() for p in _files(home.root)}
    assert after == before


def test_missing_kek_is_refused_clearly_and_writes_nothing(home: Home, monkeypatch) -> None:
    before = _files(home.root)
    monkeypatch.delenv("COUNCILMATCH_KEK")
    with pytest.raises(MissingKEKError, match="set COUNCILMATCH_KEK"):
        load_keyring(home)
    with pytest.raises(MissingKEKError):
        rotate_keys(home)
    assert _files(home.root) == before


def test_malformed_kek_is_refused(home: Home, monkeypatch) -> None:
    monkeypatch.setenv("COUNCILMATCH_KEK", "not base64!")
    with pytest.raises(InvalidKEKError, match="not valid base64"):
        load_keyring(home)
    monkeypatch.setenv("COUNCILMATCH_KEK", "c2hvcnQ=")
    with pytest.raises(InvalidKEKError, match="expected 32"):
        load_keyring(home)


def test_no_keyring_yet(tmp_path) -> None:
    with pytest.raises(KeyringMissingError, match="keys init"):
        load_keyring(Home(tmp_path))


def test_keyring_is_encrypted_at_rest(home: Home) -> None:
    blob = keyring_path(home).read_bytes()
    assert b"secret" not in blob and b"k1" not in blob and b"created" not in blob
    assert stat.S_IMODE(keyring_path(home).stat().st_mode) == 0o600


def test_rotation_keeps_old_versions(home: Home) -> None:
    assert rotate_keys(home) == "k2"
    assert rotate_keys(home) == "k3"
    status = key_status(home)
    assert status["active"] == "k3"
    assert [k["key_id"] for k in status["keys"]] == ["k1", "k2", "k3"]
    assert status["kek_source"] == "COUNCILMATCH_KEK"
    assert "secret" not in str(status)


def test_cli_dev_kek_on_fresh_home(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("COUNCILMATCH_KEK")
    runner = CliRunner()
    h = tmp_path / "fresh"
    result = runner.invoke(app, ["keys", "init", "--dev-kek", "--home", str(h)])
    assert result.exit_code == 0, result.output
    assert "development key-encryption key written to" in result.output
    assert "set COUNCILMATCH_KEK in production" in result.output
    dev = h / "keys" / "dev-kek"
    assert stat.S_IMODE(dev.stat().st_mode) == 0o600
    assert not (h / "store").exists() or not any((h / "store").rglob("*kek*"))
    # later loads use the file; the KEK value is never printed
    status = runner.invoke(app, ["keys", "status", "--home", str(h)])
    assert status.exit_code == 0 and '"active": "k1"' in status.output
    assert dev.read_text().strip() not in status.output + result.output
    rotated = runner.invoke(app, ["keys", "rotate", "--home", str(h)])
    assert rotated.exit_code == 0 and "k2" in rotated.output
    # a wrong env KEK overrides the dev file and is refused with exit 1
    monkeypatch.setenv("COUNCILMATCH_KEK", "c2hvcnQ=")
    bad = runner.invoke(app, ["keys", "status", "--home", str(h)])
    assert bad.exit_code == 1 and "expected 32" in bad.output


def test_init_is_idempotent(home: Home) -> None:
    blob = keyring_path(home).read_bytes()
    assert init_keys(home) == "k1"
    assert keyring_path(home).read_bytes() == blob


def test_kek_from_airflow_connection(home, monkeypatch, _kek_env) -> None:
    """Without COUNCILMATCH_KEK, the password of the Airflow connection councilmatch_kek is used."""
    import json as _json

    monkeypatch.delenv("COUNCILMATCH_KEK")
    monkeypatch.setenv("AIRFLOW_CONN_COUNCILMATCH_KEK", _json.dumps({"conn_type": "generic", "password": _kek_env}))
    # anonymise imports no Airflow: until the orchestration layer passes the source in, there is no KEK
    monkeypatch.setattr(kek, "_sources", [])
    with pytest.raises(MissingKEKError):
        load_keyring(home)
    isolated_airflow.use_airflow_kek()
    status = key_status(home)
    assert status["kek_source"] == "Airflow connection 'councilmatch_kek'" and status["active"] == "k1"
    monkeypatch.setenv("AIRFLOW_CONN_COUNCILMATCH_KEK", _json.dumps({"conn_type": "generic", "password": "c2hvcnQ="}))
    with pytest.raises(InvalidKEKError, match="Airflow connection"):
        load_keyring(home)


def test_an_added_kek_source_is_asked_once_a_minute_and_again_when_the_environment_changes(
        home, monkeypatch, _kek_env) -> None:
    """Every encrypted read asks for the KEK; the Airflow connection is a round trip to Airflow."""
    asked = []
    monkeypatch.delenv("COUNCILMATCH_KEK")
    monkeypatch.setattr(kek, "_sources", [lambda: asked.append(1) or (_kek_env, "test source")])
    monkeypatch.setattr(kek, "_answers", {})
    for _ in range(5):
        assert load_keyring(home).key_id == "k1"
    assert len(asked) == 1
    monkeypatch.setenv("AIRFLOW_CONN_COUNCILMATCH_KEK", "changed")  # e.g. the connection given by env
    assert kek.find_kek(home).source == "test source" and len(asked) == 2
    monkeypatch.setattr(kek, "SOURCE_SECONDS", 0.0)  # the minute is up
    kek.find_kek(home)
    assert len(asked) == 3


# -- the development KEK is an explicit opt-in that production refuses (issue 10, item 7) --------


def test_keys_init_without_kek_and_without_opt_in_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("COUNCILMATCH_KEK", raising=False)
    monkeypatch.delenv("COUNCILMATCH_DEV_KEK", raising=False)
    h = tmp_path / "fresh"
    result = CliRunner().invoke(app, ["keys", "init", "--home", str(h)])
    assert result.exit_code == 1
    assert "no key-encryption key" in result.output and "--dev-kek" in result.output
    assert not (h / "keys").exists() or not any((h / "keys").iterdir())
    with pytest.raises(MissingKEKError):
        init_keys(Home(h))


def test_empty_kek_fails_fast_and_never_falls_back_to_a_dev_kek(tmp_path, monkeypatch) -> None:
    """`COUNCILMATCH_KEK=""` is what compose passed when .env lacked it: an error, not "no KEK"."""
    h = Home(tmp_path / "h")
    monkeypatch.setenv("COUNCILMATCH_DEV_KEK", "1")
    monkeypatch.setenv("COUNCILMATCH_KEK", "")
    for args in (["keys", "init"], ["keys", "init", "--dev-kek"], ["keys", "status"]):
        result = CliRunner().invoke(app, [*args, "--home", str(h.root)])
        assert result.exit_code == 1, args
        assert "COUNCILMATCH_KEK is set but empty" in " ".join(result.output.split()), args
    assert not (h.keys / "dev-kek").exists()
    # an existing dev-kek file does not rescue an empty variable either
    monkeypatch.delenv("COUNCILMATCH_KEK")
    init_keys(h, dev_kek=True)
    monkeypatch.setenv("COUNCILMATCH_KEK", "   ")
    with pytest.raises(MissingKEKError, match="set but empty"):
        load_keyring(h)


def test_production_refuses_writing_and_reading_a_dev_kek(tmp_path, monkeypatch) -> None:
    from anonymise.errors import DevKEKRefusedError

    monkeypatch.delenv("COUNCILMATCH_KEK", raising=False)
    dev_home = Home(tmp_path / "dev")
    init_keys(dev_home, dev_kek=True)  # a development home, made before production was switched on
    monkeypatch.setenv("COUNCILMATCH_PRODUCTION", "1")
    monkeypatch.setenv("COUNCILMATCH_DEV_KEK", "1")
    with pytest.raises(DevKEKRefusedError, match="production refuses"):
        load_keyring(dev_home)
    fresh = Home(tmp_path / "fresh")
    with pytest.raises(DevKEKRefusedError, match="production refuses"):
        init_keys(fresh, dev_kek=True)
    assert not (fresh.keys / "dev-kek").exists()
    result = CliRunner().invoke(app, ["keys", "init", "--dev-kek", "--home", str(fresh.root)])
    assert result.exit_code == 1 and "production refuses" in " ".join(result.output.split())
    # a home whose settings.yaml says production is refused the same way, without the variable
    monkeypatch.delenv("COUNCILMATCH_PRODUCTION")
    load_keyring(dev_home)
    dev_home.settings_file.write_text("production: true\n")
    with pytest.raises(DevKEKRefusedError, match="production refuses"):
        load_keyring(dev_home)
    monkeypatch.setenv("COUNCILMATCH_PRODUCTION", "1")
    # with a real KEK production works as before
    monkeypatch.setenv("COUNCILMATCH_KEK", base64.b64encode(os.urandom(32)).decode())
    assert init_keys(fresh) == "k1"
    assert not (fresh.keys / "dev-kek").exists()
