"""python -m privacy_attacks --home DIR [--known 20] [--seed 0] [--json FILE] [--reader MODULE:FUNCTION]

Prints the attack table for a home after a night (its store and vault; the keyring, read with
COUNCILMATCH_KEK, is used only to score). Exit status 0 whether or not the goal is met.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from councilmatch.home import Home
from privacy_attacks.report import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m privacy_attacks", description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="councilmatch home after a night (store/ and vault/)")
    parser.add_argument("--known", type=int, default=20, help="records whose names the insider knows (0 = none)")
    parser.add_argument("--seed", type=int, default=0, help="which records the insider knows")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--reader", help="MODULE:FUNCTION reading one store file (Path) into the pseudonymised "
                        "frame, e.g. a decrypting reader once the store is encrypted at rest")
    args = parser.parse_args(argv)
    reader = None
    if args.reader:
        module, _, function = args.reader.partition(":")
        reader = getattr(importlib.import_module(module), function)
    report = run(Home.resolve(args.home), reader=reader, known=args.known, seed=args.seed)
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
