"""Commands of the anonymise stage: ``keys init | status | rotate | repseudonymise | change-kek | retire``,
``pseudonymise`` (at source), ``vault reidentify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from anonymise.errors import AnonymiseError
from ingest.feeds import FeedDefinitionError
from ingest.read import ExtractError
from orchestrate.commands.options import HomeOption, resolve_home

console = Console(stderr=True)
keys_app = typer.Typer(help="The matching keyring (encrypted under the key-encryption key).", no_args_is_help=True)
vault_app = typer.Typer(help="The vault of clear identifiers (every read is audited).", no_args_is_help=True)


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1)


@keys_app.command("init")
def keys_init(
    home: HomeOption = None,
    dev_kek: bool = typer.Option(False, "--dev-kek", help="Development homes only: without COUNCILMATCH_KEK, "
                                 "write a key-encryption key file beside the keyring (refused in production)."),
) -> None:
    """Create the keyring (key k1) under COUNCILMATCH_KEK (or, opted in with --dev-kek, a development KEK)."""
    from anonymise.kek import dev_kek_path, find_kek
    from anonymise.keys import init_keys, keyring_path

    h = resolve_home(home)
    existed = keyring_path(h).exists()
    try:
        had_kek = find_kek(h) is not None if not existed else True
        key_id = init_keys(h, dev_kek=True if dev_kek else None)
    except AnonymiseError as exc:
        _fail(exc)
    if not had_kek:
        console.print(f"[yellow]development key-encryption key written to {dev_kek_path(h)}; "
                      "set COUNCILMATCH_KEK in production[/yellow]")
    print(f"keyring {'already initialised' if existed else 'created'} at {keyring_path(h)}; active key {key_id}")


@keys_app.command("status")
def keys_status(home: HomeOption = None) -> None:
    """Show the key versions and where the KEK comes from (never any key material)."""
    from anonymise.keys import key_status

    try:
        print(json.dumps(key_status(resolve_home(home)), indent=2))
    except AnonymiseError as exc:
        _fail(exc)


@keys_app.command("rotate")
def keys_rotate(home: HomeOption = None,
                now: Annotated[bool, typer.Option("--now/--at-next-night",
                                                  help="Re-pseudonymise the store from the archive at once.")] = True) -> None:
    """Add a new key version, make it active, and re-make the store under it from the encrypted archive."""
    from anonymise.custody import repseudonymise
    from anonymise.keys import rotate_keys
    from matching.minimisation import store_policy

    h = resolve_home(home)
    try:
        key_id = rotate_keys(h)
    except AnonymiseError as exc:
        _fail(exc)
    print(f"active key is now {key_id}")
    if not now:
        print("stored extracts will be re-made under it from the encrypted archive by the next night's ingest")
        return
    _print_repseudonymised(repseudonymise(h, store_policy(h)))


def _print_repseudonymised(results: list[dict]) -> None:
    for r in results:
        print(f"{r['feed_id']} {r['extract_id']}: {r['status']}" + (f" ({r['error']})" if r.get("error") else ""))
    done = sum(r["status"] == "repseudonymised" for r in results)
    print(f"re-pseudonymised {done} of {len(results)} stored extract(s) under the active key")
    if any(r["status"] not in ("repseudonymised", "superseded") for r in results):
        console.print("[yellow]some extracts could not be re-made here (no archive, failed, or at-source: "
                      "the council must send them again); matching refuses mixed key ids until they are[/yellow]")
        raise typer.Exit(1)


@keys_app.command("repseudonymise")
def keys_repseudonymise(home: HomeOption = None,
                        feed: Annotated[str | None, typer.Option(help="Only this feed (council/dataset).")] = None) -> None:
    """Re-make stored extracts that are not under the active key, from the encrypted archive."""
    from anonymise.custody import repseudonymise
    from matching.minimisation import store_policy

    try:
        h = resolve_home(home)
        _print_repseudonymised(repseudonymise(h, store_policy(h), feed))
    except AnonymiseError as exc:
        _fail(exc)


@keys_app.command("change-kek")
def keys_change_kek(
    home: HomeOption = None,
    new_kek_env: Annotated[str, typer.Option(help="Environment variable holding the new KEK (base64 of 32 bytes); "
                                             "never pass a key on the command line.")] = "COUNCILMATCH_NEW_KEK",
) -> None:
    """Re-wrap the keyring and every data key under a new key-encryption key (nothing re-ingested)."""
    from anonymise.custody import change_kek
    from anonymise.kek import decode_kek, KEK

    import os


    text = os.environ.get(new_kek_env)
    if not text:
        _fail(AnonymiseError(f"set {new_kek_env} to the new key-encryption key (base64 of 32 random bytes)"))
    try:
        result = change_kek(resolve_home(home), KEK(decode_kek(text, new_kek_env), new_kek_env))
    except AnonymiseError as exc:
        _fail(exc)
    print(f"re-wrapped {len(result['rewrapped'])} file(s) under the new key-encryption key")
    print(result["next"])


@keys_app.command("retire")
def keys_retire(
    key_id: Annotated[str, typer.Argument(help="Old key version to remove, e.g. k1.")],
    home: HomeOption = None,
) -> None:
    """Remove an old key version after retention: what was sealed under it can no longer be read."""
    from anonymise.keys import retire_key

    try:
        remaining = retire_key(resolve_home(home), key_id)
    except AnonymiseError as exc:
        _fail(exc)
    print(f"retired {key_id}; keyring now holds {', '.join(remaining)}")


def pseudonymise_cmd(
    feed: Annotated[Path, typer.Option("--feed", help="Feed definition YAML of the raw extract.")],
    extract: Annotated[Path, typer.Option("--extract", help="The raw extract (CSV, XLSX, Parquet).")],
    out: Annotated[Path, typer.Option("--out", help="Pseudonymised Parquet to write (send this to the hub).")],
    home: HomeOption = None,
) -> None:
    """At-source mode: ingest and pseudonymise an extract here; only tokens leave the council."""
    from anonymise.at_source import pseudonymise_at_source

    try:
        summary = pseudonymise_at_source(resolve_home(home), feed, extract, out)
    except (AnonymiseError, FeedDefinitionError, ExtractError) as exc:
        _fail(exc)
    print(json.dumps(summary, indent=2))


@vault_app.command("reidentify")
def vault_reidentify(
    council: Annotated[str, typer.Option(help="Council (ONS code) that owns the record.")],
    record_id: Annotated[str, typer.Option(help="The council's own record reference.")],
    actor: Annotated[str, typer.Option(help="Who is asking (audited).")],
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    dataset: Annotated[str | None, typer.Option(help="Restrict to one data set.")] = None,
    home: HomeOption = None,
) -> None:
    """Print the newest clear record of one reference; the request is written to vault/audit.log."""
    from anonymise.keys import load_keyring
    from anonymise.vault import Vault

    h = resolve_home(home)
    try:
        record = Vault(h, load_keyring(h)).reidentify(council, record_id, actor, reason, dataset=dataset)
    except (AnonymiseError, KeyError) as exc:
        _fail(exc)
    print(json.dumps(record, indent=2))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the main app."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(vault_app, name="vault")
    app.command("pseudonymise")(pseudonymise_cmd)
