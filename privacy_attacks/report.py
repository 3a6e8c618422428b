"""Run every insider attack on a home's store and score it against the vault.

Each attack sees only the decrypted store and public knowledge; the scorer alone reads the
vault (with the keyring). A record counts as re-identified by an attack when the attack's
guess equals the clear value behind the attacked column; "distinct" is the share of distinct
clear values the attack got right for at least one record.

An attack from known records learns, besides what it decodes, every record whose encoding is
*identical* to a known record's: the same name in the same salt group, almost always the known
person's own other records. Any encoding that links must encode one person's two records alike,
so that is the linkage itself, not a weakness of the encoding; it is reported beside the row
("same encoding as a known record") and not counted as re-identified.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from councilmatch.contracts import BLOOM_SALT_TOKENS
from councilmatch.home import Home
from privacy_attacks import knowledge
from privacy_attacks.bloom import pattern_attack
from privacy_attacks.frequency import entry_frequency_attack, frequency_attack, grouped_attack, salted_frequency_attack
from privacy_attacks.insider_store import (Reader, bloom_columns, byte_matrix, neighbourhood_columns, neighbourhood_tokens,
                                          read_store, token_columns)
from privacy_attacks.linkage import clear_field_attack, record_id_attack
from privacy_attacks.truth import align, derived, entry_names, vault_records

#: The goal of issue 11: no attack re-identifies more than this share of records.
GOAL_RECORDS = 0.05

#: Token column -> (public table, key of a public name, re-identifies a person if right?)
FREQUENCY_ATTACKS: dict[str, tuple[Callable[[], knowledge.Table], Callable[[str], str] | None, bool]] = {
    "t_surname": (knowledge.surnames, None, True),
    "t_prev_surname": (knowledge.surnames, None, True),
    "t_surname_first": (knowledge.surnames, None, True),
    "t_surname_last": (knowledge.surnames, None, True),
    "t_forename": (knowledge.forenames, None, True),
    "t_forename_canon": (knowledge.canonical_forenames, None, True),
    "t_surname_phon": (knowledge.surnames, knowledge.soundex, False),
    "t_forename_phon": (knowledge.forenames, knowledge.soundex, False),
    "t_initial": (knowledge.forenames, knowledge.initial, False),
}
#: Grouped frequency attacks: (name, chain of (column, key), public table, truth column).
GROUPED_ATTACKS = (
    ("t_forename | t_initial", (("t_initial", knowledge.initial), ("t_forename", lambda v: v)),
     knowledge.forenames, "t_forename"),
    ("t_forename | t_initial, t_forename_phon",
     (("t_initial", knowledge.initial), ("t_forename_phon", knowledge.soundex), ("t_forename", lambda v: v)),
     knowledge.forenames, "t_forename"),
    ("t_surname | t_surname_phon", (("t_surname_phon", knowledge.soundex), ("t_surname", lambda v: v)),
     knowledge.surnames, "t_surname"),
)
#: Bloom column -> public table (columns without one get the Hamming-weight check only)
BLOOM_TABLES: dict[str, Callable[[], knowledge.Table]] = {
    "bf_surname": knowledge.surnames,
    "bf_forenames": knowledge.forenames,
}


#: Neighbourhood column (edit or nickname) -> public table. A neighbourhood is deterministic per
#: name, so it is frequency-ranked as a whole, like a token.
NEIGHBOURHOOD_TABLES: dict[str, Callable[[], knowledge.Table]] = {
    "ed_surname": knowledge.surnames,
    "ed_forename": knowledge.forenames,
    "nk_forename": knowledge.forenames,  # a nickname neighbourhood: as deterministic per name
    "nf_words": knowledge.forenames,  # every spelled-out forename: one word for most records
}


#: Neighbourhood column holding several names -> public table: each entry (one name) is ranked
#: on its own, and a record is named when all its names are.
ENTRY_TABLES: dict[str, Callable[[], knowledge.Table]] = {
    "nf_words": knowledge.forenames,
}


#: A stored token an encoding might be salted by: the attack is repeated inside one of its groups.
SALT_GROUP = "t_yob"


@dataclass
class Row:
    attack: str
    column: str
    records: float          # share of scored records re-identified
    distinct: float         # share of distinct clear values recovered
    scored: int             # records with a clear value behind the column (known ones excluded)
    identifying: bool       # a right guess names the person (a name), not just narrows them down
    seconds: float
    note: str = ""
    #: share of the records not scored because their encoding equals a known record's (see above)
    echoed: float = 0.0


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    clear_fields: list[dict] = field(default_factory=list)
    record_ids_clear: float = 0.0
    hamming: list[dict] = field(default_factory=list)
    not_attacked: list[str] = field(default_factory=list)
    sealed: list[str] = field(default_factory=list)
    records: int = 0

    @property
    def worst(self) -> Row | None:
        rows = [r for r in self.rows if r.identifying]
        return max(rows, key=lambda r: r.records) if rows else None

    @property
    def fields_singling_out(self) -> list[str]:
        out = [f["fields"] for f in self.clear_fields if f["singled_out"] > 0]
        return out + (["record_id"] if self.record_ids_clear > 0 else [])

    @property
    def meets_goal(self) -> bool:
        worst = self.worst
        return (worst is None or worst.records <= GOAL_RECORDS) and not self.fields_singling_out

    def as_dict(self) -> dict:
        return {"records": self.records, "rows": [asdict(r) for r in self.rows], "clear_fields": self.clear_fields,
                "record_ids_clear": self.record_ids_clear, "hamming": self.hamming,
                "not_attacked": self.not_attacked, "sealed": self.sealed, "meets_goal": self.meets_goal,
                "fields_singling_out": self.fields_singling_out}

    def table(self) -> str:
        lines = [f"insider attacks on {self.records} store records (no keyring; public tables: names 0.3.0 US census, nicknames)",
                 "", f"{'attack':<36} {'column':<40} {'records':>8} {'distinct':>9} {'scored':>7}  note"]
        for r in self.rows:
            mark = "" if r.identifying else " (partial)"
            lines.append(f"{r.attack:<36} {r.column:<40} {r.records:>8.1%} {r.distinct:>9.1%} {r.scored:>7}  "
                         f"{r.note}{mark}")
        lines += ["", f"{'Hamming weight vs length':<36} {'column':<40} {'corr':>8} {'exact':>9}"]
        for h in self.hamming:
            exact = "-" if np.isnan(h["exact_grams"]) else f"{h['exact_grams']:.1%}"
            lines.append(f"{'':<36} {h['column']:<40} {h['corr']:>8.2f} {exact:>9}")
        lines += ["", f"{'clear fields (within council + data set)':<44} {'records holding':>16} {'singled out':>12}"]
        for f in self.clear_fields:
            lines.append(f"{f['fields']:<44} {f['records_holding']:>16} {f['singled_out']:>12.1%}")
        lines.append(f"{'record_id equal to the council id':<44} {self.records:>16} {self.record_ids_clear:>12.1%}")
        if self.sealed:
            lines.append("columns refused without the keyring (not readable by this insider): "
                         + ", ".join(self.sealed))
        if self.not_attacked:
            lines += ["", "columns without an independent public table (token: not frequency-attacked; Bloom: "
                      "weight check only): " + ", ".join(self.not_attacked)]
        worst = self.worst
        lines += ["", f"worst identifying attack: {worst.attack} on {worst.column}: {worst.records:.1%} of records"
                  if worst else "no identifying attack ran",
                  f"clear fields that single out a record: {', '.join(self.fields_singling_out) or 'none'}",
                  f"goal (<= {GOAL_RECORDS:.0%} re-identified, no clear field singles out): "
                  + ("MET" if self.meets_goal else "NOT MET")]
        return "\n".join(lines)


def echoes(encodings: pd.Series, known: pd.Index) -> np.ndarray:
    """Records whose encoding is identical to one of the ``known`` records' (known ones included)."""
    return encodings.isin(set(encodings.loc[encodings.index.intersection(known)])).to_numpy()


def _score(guess: pd.Series, truth: pd.Series, exclude: pd.Index | None = None) -> tuple[float, float, int]:
    mask = truth.notna()
    if exclude is not None:
        mask &= ~truth.index.isin(exclude)
    t, g = truth[mask], guess[mask]
    if len(t) == 0:
        return 0.0, 0.0, 0
    right = (g.astype(object) == t.astype(object)).to_numpy()
    return float(right.mean()), float(t[right].nunique() / t.nunique()), int(len(t))


def run(home: Home, reader: Reader | None = None, known: int = 20, seed: int = 0) -> Report:
    """Every attack on ``home``'s store. ``known``: records whose names the insider knows (0 = none)."""
    store = read_store(home, reader)
    truth = align(store, vault_records(home))
    report = Report(records=len(store))
    tokens = token_columns(store)

    def add(attack: str, column: str, guess: pd.Series, target: pd.Series | None, identifying: bool,
            started: float, note: str = "", exclude: pd.Index | None = None) -> None:
        if target is None:
            return
        echoed = 0.0
        if exclude is not None and column in store.columns:
            echo = echoes(store[column].loc[target.index], exclude)
            candidates = target.notna() & ~target.index.isin(exclude)
            echoed = float(echo[candidates].mean()) if candidates.any() else 0.0
            exclude = exclude.union(target.index[echo])
            note = f"{note}; same encoding as a known record: {echoed:.1%}" if note else \
                f"same encoding as a known record: {echoed:.1%}"
        records, distinct, scored = _score(guess, target, exclude)
        report.rows.append(Row(attack, column, records, distinct, scored, identifying,
                               round(time.perf_counter() - started, 2), note, echoed))

    for column in tokens:
        if column not in FREQUENCY_ATTACKS:
            report.not_attacked.append(column)
            continue
        table, key, identifying = FREQUENCY_ATTACKS[column]
        started = time.perf_counter()
        add("frequency rank", column, frequency_attack(store, column, table(), key), derived(truth, column),
            identifying, started)
    for name, chain, table, target in GROUPED_ATTACKS:
        if all(c in tokens for c, _ in chain):
            started = time.perf_counter()
            add("grouped frequency rank", name, grouped_attack(store, chain, table()), derived(truth, target),
                True, started)

    for column in neighbourhood_columns(store):
        if column not in NEIGHBOURHOOD_TABLES:
            report.not_attacked.append(column)
            continue
        started = time.perf_counter()
        as_tokens = pd.DataFrame({column: neighbourhood_tokens(store[column])}, index=store.index)
        add("frequency rank (whole neighbourhood)", column, frequency_attack(as_tokens, column, NEIGHBOURHOOD_TABLES[column]()),
            derived(truth, column), True, started)

    for column, table_of in ENTRY_TABLES.items():
        if column not in store.columns:
            continue
        started = time.perf_counter()
        entries = byte_matrix(store[column]).view(">u4")  # one 4-byte keyed hash per name
        add("frequency rank of each entry", column, entry_frequency_attack(entries, table_of()).set_axis(store.index),
            entry_names(column, derived(truth, column)), True, started)

    rng = np.random.default_rng(seed)
    surname_anchors = None
    # bf_surname first: its decoded anchors are tried on the other name column (shared key?)
    for column in sorted(bloom_columns(store), key=lambda c: c != "bf_surname"):
        target = derived(truth, column)
        if column not in BLOOM_TABLES:  # addresses, or a record-level filter: no public dictionary
            report.not_attacked.append(column)
            _hamming(report, store, column, target, None)
            continue
        table = BLOOM_TABLES[column]()
        started = time.perf_counter()
        result = pattern_attack(store[column], table)
        add("pattern, frequency-seeded", column, result.guess, target, True, started,
            "seeds: " + " ".join(result.seeds[:5]))
        _hamming(report, store, column, target, result.est_grams)
        salt = [c for c in BLOOM_SALT_TOKENS.get(column, ()) if c in tokens]
        if salt:
            started = time.perf_counter()
            add("frequency rank inside salt groups", f"{column} | {', '.join(salt)}",
                salted_frequency_attack(store, column, salt, table), target, True, started,
                f"{store.groupby(salt).ngroups} groups")
        if known and target is not None and target.notna().sum() > known:
            started = time.perf_counter()
            chosen = rng.choice(np.flatnonzero(target.notna().to_numpy()), size=known, replace=False)
            insider = target.iloc[chosen]
            result = pattern_attack(store[column], table, known=insider)
            add(f"pattern, {known} records known", column, result.guess, target, True, started,
                "known records not scored", exclude=insider.index)
            if column == "bf_surname":
                surname_anchors = result.anchors
            if column == "bf_forenames" and "t_forename" in tokens:
                guess = result.guess.map(lambda v: v.split(" ")[0] if isinstance(v, str) else None)
                add("  its first forename", column, guess, derived(truth, "t_forename"), True,
                    time.perf_counter(), exclude=insider.index)
            if SALT_GROUP in tokens:
                _salt_group_attack(report, store, column, table, target, known, rng, add)
        if column != "bf_surname" and surname_anchors is not None:
            started = time.perf_counter()
            result = pattern_attack(store[column], table, borrowed=surname_anchors)
            add("pattern, anchors from bf_surname", column, result.guess, target, True, started,
                "works only if both share a key")

    report.clear_fields = clear_field_attack(store)
    report.sealed = list(store.attrs.get("sealed", []))
    report.record_ids_clear = record_id_attack(store["record_id"], truth["record_id"])
    return report


def _salt_group_attack(report: Report, store: pd.DataFrame, column: str, table: knowledge.Table,
                       target: pd.Series, known: int, rng: np.random.Generator, add) -> None:
    """The known-records attack inside the largest group of SALT_GROUP.

    Filters salted by a stored attribute (e.g. year of birth) are still deterministic inside
    the attribute's group, and the group is visible (its token is in the store): an insider who
    knows a few people born in one year attacks that year's filters alone.
    """
    tokens = store[SALT_GROUP]
    present = target.notna() & (tokens != 0)
    if not present.any():
        return
    group = tokens[present].value_counts().index[0]
    rows = store.index[(tokens == group).to_numpy() & present.to_numpy()]
    k = max(3, known // 2)
    if len(rows) <= 2 * k:
        return
    started = time.perf_counter()
    insider = target.loc[rng.choice(rows, size=k, replace=False)]
    result = pattern_attack(store.loc[rows, column], table, known=insider)
    add(f"pattern, {k} known in one {SALT_GROUP}", column, result.guess, target.loc[rows], True, started,
        f"largest {SALT_GROUP} group: {len(rows)} records", exclude=insider.index)


def _hamming(report: Report, store: pd.DataFrame, column: str, target: pd.Series | None,
             est: pd.Series | None) -> None:
    """Correlation of the filters' Hamming weights with the clear values' lengths."""
    if target is None:
        return
    from privacy_attacks.bloom import grams
    from privacy_attacks.insider_store import bits

    weight = pd.Series(bits(store[column]).sum(axis=1), index=store.index)
    mask = target.notna() & (weight > 0)
    if mask.sum() < 3:
        return
    length = target[mask].map(len).astype(float)
    corr = float(np.corrcoef(weight[mask].astype(float), length)[0, 1])
    exact = float((est[mask] == target[mask].map(lambda v: len(grams(v)))).mean()) if est is not None else float("nan")
    report.hamming.append({"column": column, "corr": corr, "exact_grams": exact})
