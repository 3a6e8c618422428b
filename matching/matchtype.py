"""Match types: declared in YAML, validated here, loaded from the package and the home.

A match type says which two data sets to link, how (blocking rules, comparisons,
threshold), and which rules turn a link into a flag. The shipped ones live in
``matching/matchtypes/*.yaml``; a home's ``matchtypes/`` folder adds new ones or
overrides shipped ones by id. Validation errors name the file, line and key.
"""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from councilmatch.contracts import DATASETS, EDIT_BYTES, TOKEN_COLUMNS
from councilmatch.fileio import YamlModelError, parse_yaml_model, yaml_line
from matching.comparisons import LIBRARY, Comparison
from matching.conditions import CONDITIONS
from matching.em import EMSettings

SHIPPED = Path(__file__).parent / "matchtypes"

#: a token column name (so a typo is reported at its own line)
TokenColumn = Literal[tuple(TOKEN_COLUMNS)]  # type: ignore[valid-type]
EditColumn = Literal[tuple(EDIT_BYTES)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class TrainingSettings:
    """Declared per linkage in YAML (``training:``); the defaults suit person linkage."""

    #: random pairs drawn to measure u (and to run the random-pair fit check)
    random_pairs: int = 300_000
    #: cap on the candidate pairs EM trains on per blocking rule (a sample of whole blocks)
    max_training_pairs: int = 1_000_000
    #: random seed for the random pairs (training is deterministic given the data)
    seed: int = 20240611
    em: EMSettings = field(default_factory=EMSettings)
    #: random pairs flagged may exceed λ·n by this factor (plus a small allowance) before
    #: the fit counts as degenerate
    random_pair_tolerance: float = 5.0


class MatchTypeError(ValueError):
    """A match type file that cannot be used; the message names file, line and key."""


class _ComparisonSettings(BaseModel):
    """What every comparison entry may say. An unknown or misplaced key is an error."""

    model_config = ConfigDict(extra="forbid")
    #: the comparison's name in flags and charts (defaults to the library's)
    name: str | None = None
    #: starting m per level label, e.g. {exact: 0.9}; also the documented fallback if a fit
    #: is degenerate. Levels not named keep the library's value.
    m: dict[str, float] = Field(default_factory=dict)
    #: token columns this field depends on, e.g. [t_address] for a surname: where a pair agrees
    #: on them its evidence is measured among different people who agree on them too (members
    #: of one household share a surname), not among random pairs. Several groups, each of which
    #: may hold, as a list of lists: [[t_address], [t_surname]] for a birthday (twins share a
    #: home and a surname; a twin who moved out still shares the surname)
    given: list[TokenColumn] | list[list[TokenColumn]] = Field(default_factory=list)
    #: where this comparison's m comes from, if not as the linkage's ``m_from`` says. ``em``: from
    #: the match type's own pairs, for a field whose agreement between these two data sets is
    #: unlike the pool's (a pass and its holder's death registration give the same home far more
    #: often than two of one person's records across all data sets do: people move)
    m_from: Literal["pool", "em"] | None = None

    def _factory_kwargs(self) -> dict[str, Any]:
        return {}

    def build(self) -> Comparison:
        comparison = LIBRARY[self.use](**self._factory_kwargs())  # type: ignore[attr-defined]
        labels = [lv.label for lv in comparison.levels]
        unknown = sorted(set(self.m) - set(labels))
        if unknown:
            raise ValueError(f"m: no level {unknown} in {comparison.name!r} (levels: {labels})")
        levels = tuple(replace(lv, m_start=float(self.m.get(lv.label, lv.m_start))) for lv in comparison.levels)
        groups = [self.given] if self.given and isinstance(self.given[0], str) else self.given
        return Comparison(self.name or comparison.name, comparison.description, levels, comparison.present,
                          tuple(tuple(group) for group in groups if group))


class NameComparison(_ComparisonSettings):
    """``{use: name, field: surname}``: exact, near spelling, nickname / previous surname, sounds
    alike, similar, swapped, [same initial], different."""

    use: Literal["name"]
    field: Literal["forename", "surname"] = "surname"
    #: forename only: a "same initial" level before "different" (initials-only records)
    initial: bool = False
    #: keyed bigram Dice at or above which two spellings are "near" / "similar"
    near: float = Field(0.85, gt=0, le=1)
    similar: float = Field(0.6, gt=0, le=1)

    def _factory_kwargs(self) -> dict[str, Any]:
        return {"field": self.field, "initial": self.initial, "near": self.near, "similar": self.similar}


class DateOfBirthComparison(_ComparisonSettings):
    """``{use: date_of_birth}``: exact, transposed, one part differs, [same year], different."""

    use: Literal["date_of_birth"]
    #: keep a "same year" level (off where dates are checked against ID)
    same_year: bool = True

    def _factory_kwargs(self) -> dict[str, Any]:
        return {"same_year": self.same_year}


class AddressComparison(_ComparisonSettings):
    """``{use: address}``: exact, near, similar, same premise, same postcode/sector/district, different."""

    use: Literal["address"]
    near: float = Field(0.85, gt=0, le=1)
    similar: float = Field(0.6, gt=0, le=1)
    #: same house/flat number and postcode counts when the rest is at least this similar
    premise: float = Field(0.45, gt=0, le=1)

    def _factory_kwargs(self) -> dict[str, Any]:
        return {"near": self.near, "similar": self.similar, "premise": self.premise}


class PostcodeComparison(_ComparisonSettings):
    """``{use: postcode}``: exact, same sector, same district, different."""

    use: Literal["postcode"]


class ExactComparison(_ComparisonSettings):
    """``{use: exact, column: t_nino, name: nino, edits: ed_nino}``: identical, [one keystroke
    apart], different."""

    use: Literal["exact"]
    column: TokenColumn
    #: term-frequency adjust the exact level
    tf: bool = False
    #: the column's keyed edit neighbourhood: adds a "one edit" level (a mistyped digit)
    edits: EditColumn | None = None

    def _factory_kwargs(self) -> dict[str, Any]:
        return {"column": self.column, "name": self.name, "tf": self.tf, "edits": self.edits}


#: one entry of a linkage's ``comparisons:``; ``use`` picks the typed settings
ComparisonRef = Annotated[Union[NameComparison, DateOfBirthComparison, AddressComparison, PostcodeComparison,
                                ExactComparison], Field(discriminator="use")]
COMPARISON_SETTINGS: TypeAdapter = TypeAdapter(ComparisonRef)


class EM(BaseModel):
    """EM settings (defaults: matching.em.EMSettings)."""

    model_config = ConfigDict(extra="forbid")
    max_iter: int = Field(EMSettings.max_iter, ge=1, le=10_000)
    tol: float = Field(EMSettings.tol, gt=0, lt=1)
    prior_strength: float = Field(EMSettings.prior_strength, ge=0)
    lam_start: float = Field(EMSettings.lam_start, gt=0, lt=1)


class Training(BaseModel):
    """How a linkage's model is trained (defaults: TrainingSettings)."""

    model_config = ConfigDict(extra="forbid")
    random_pairs: int = Field(TrainingSettings.random_pairs, ge=1000, le=50_000_000)
    max_training_pairs: int = Field(TrainingSettings.max_training_pairs, ge=1000)
    seed: int = TrainingSettings.seed
    random_pair_tolerance: float = Field(TrainingSettings.random_pair_tolerance, ge=1)
    em: EM = Field(default_factory=EM)

    def settings(self) -> TrainingSettings:
        return TrainingSettings(random_pairs=self.random_pairs, max_training_pairs=self.max_training_pairs,
                                seed=self.seed, random_pair_tolerance=self.random_pair_tolerance,
                                em=EMSettings(**self.em.model_dump()))


class Linkage(BaseModel):
    """How records are paired and scored."""

    model_config = ConfigDict(extra="forbid")
    #: candidate pairs agree on every token column of at least one rule
    blocking: list[list[TokenColumn]] = Field(min_length=1)
    comparisons: list[ComparisonRef] = Field(min_length=1)
    #: flag a pair when its match probability is at least this
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    #: where u comes from when scoring. "random": measured on random pairs, with λ scaled to
    #: all pairs (Splink's approach: the score is the all-pairs posterior, which blocking does
    #: not bias). "em": u and λ as EM estimated them among the candidate pairs.
    u_from: Literal["random", "em"] = "random"
    #: where m comes from. "pool": EM over every data set's records pooled together, where
    #: the same person appears many times (a fraud match type may have only a handful of
    #: true pairs, too few to learn how one person's records vary). "em": EM on this match
    #: type's own candidate pairs.
    m_from: Literal["pool", "em"] = "pool"
    #: term-frequency adjustment: agreeing on a rare name/address counts for more. Off where
    #: a shared rare value is expected anyway (members of one household share a surname).
    tf_adjust: bool = True
    #: how the model is trained (random pairs, EM); documented defaults suit person linkage
    training: Training = Field(default_factory=Training)
    #: comparisons whose lowest level ("different") vetoes a flag whatever else agrees, unless an
    #: identifier listed in ``veto_unless`` agrees exactly. Why: the model treats fields as
    #: independent, but twins share surname, date of birth and address and differ only in the
    #: forename; with ``initial: true`` a typo'd, nicknamed or initial-only forename is not
    #: "different", so the veto costs little recall.
    veto: list[str] = Field(default_factory=list)
    veto_unless: list[str] = Field(default_factory=list)

    @field_validator("blocking")
    @classmethod
    def _tokens(cls, rules: list[list[str]]) -> list[list[str]]:
        if any(not rule for rule in rules):
            raise ValueError("a blocking rule needs at least one token column")
        return rules

    @model_validator(mode="after")
    def _builds(self) -> "Linkage":
        names = [c.build().name for c in self.comparisons]
        if len(set(names)) != len(names):
            raise ValueError(f"comparison names must be unique: {names}")
        unknown = sorted(set(self.veto + self.veto_unless) - set(names))
        if unknown:
            raise ValueError(f"veto / veto_unless name no comparison: {unknown} (comparisons: {names})")
        return self

    def built(self) -> list[Comparison]:
        return [c.build() for c in self.comparisons]

    def unblocked_identifiers(self) -> list[str]:
        """Token columns compared exactly (identifiers: NINO, phone, email) that no blocking rule
        holds alone: a pair that shares one of them but whose names and birthday are all mistyped
        is never a candidate, however strongly the model would flag it."""
        alone = {rule[0] for rule in self.blocking if len(rule) == 1}
        return [c.column for c in self.comparisons if isinstance(c, ExactComparison) and c.column not in alone]

    def m_starts(self) -> list[np.ndarray]:
        """Starting m per comparison level: the library's documented priors (also the fallback)."""
        return [np.array([lv.m_start for lv in c.levels], dtype=float) for c in self.built()]

    def training_settings(self) -> TrainingSettings:
        return self.training.settings()


class MatchType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    #: what the investigator reads: why this pair is worth a look
    reason: str
    left: str
    right: str
    scope: Literal["different_councils", "same_council", "any"] = "any"
    link: Literal["same_person", "same_address_different_person"] = "same_person"
    conditions: list[str] = Field(default_factory=list)
    priority: int = Field(2, ge=1)
    #: same_person: the person model; same_address_different_person: the address model
    linkage: Linkage
    #: same_address_different_person only: flag when P(same person) is below person.threshold
    person: Linkage | None = None
    #: same_address_different_person only: the share of left records whose own person is on
    #: none of the right records at the address (e.g. discount holders not on the register).
    #: When set, a pair is also judged among all the left record's right records at the
    #: address: one of them is probably the left record's own person (see household.household_p_same).
    left_person_missing: float | None = Field(None, gt=0.0, lt=1.0)
    #: ``em``: ``left_person_missing`` is where the estimate from the data starts (by EM over
    #: the left records' households at training, kept in the model); ``settings``: it is used as set
    left_person_missing_from: Literal["em", "settings"] = "em"

    @field_validator("left", "right")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if v not in DATASETS:
            raise ValueError(f"unknown data set {v!r}; known: {', '.join(DATASETS)}")
        return v

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, v: list[str]) -> list[str]:
        for c in v:
            if c not in CONDITIONS:
                raise ValueError(f"unknown condition {c!r}; the vocabulary is {', '.join(CONDITIONS)}")
        return v

    @model_validator(mode="after")
    def _person(self) -> "MatchType":
        if self.link == "same_address_different_person" and self.person is None:
            raise ValueError("link same_address_different_person needs a 'person' linkage")
        if self.left_person_missing is not None and self.link != "same_address_different_person":
            raise ValueError("left_person_missing applies to link same_address_different_person only")
        if self.left_person_missing is not None and self.dedupe:
            raise ValueError("left_person_missing needs two different data sets (left and right)")
        return self

    @property
    def dedupe(self) -> bool:
        """Both sides are the same data set: each unordered pair once, left = smaller reference."""
        return self.left == self.right


# ---------------------------------------------------------------------------
# Loading, with errors that point at file, line and key
# ---------------------------------------------------------------------------


def parse_matchtype(text: str, source: str) -> MatchType:
    try:
        return parse_yaml_model(text, MatchType, source)[0]
    except YamlModelError as exc:
        lines = []
        for p in exc.problems:
            if p.kind == "yaml":
                where = f"{source}:{p.line}" if p.line else source
                raise MatchTypeError(f"{where}: not valid YAML: {p.message}") from None
            if p.kind == "not_a_mapping":
                raise MatchTypeError(f"{source}:1: a match type must be a mapping of keys to values") from None
            loc = tuple(part for part in p.loc if not (isinstance(part, str) and part.startswith("function-")))
            if p.kind in ("union_tag_invalid", "union_tag_not_found"):
                loc += ("use",)  # the comparison's `use:` picked no library entry
            key = ".".join(str(part) for part in loc) or "(top level)"
            lines.append(f"{source}:{yaml_line(exc.node, loc)}: {key}: {p.message.removeprefix('Value error, ')}")
        raise MatchTypeError("\n".join(lines)) from None


_PARSED: dict[tuple[str, str], MatchType] = {}


def load_file(path: Path) -> MatchType:
    """Parsed once per process and file content: every link shard task loads the match types,
    and parsing the YAML costs more than linking a small incremental shard."""
    text = Path(path).read_text(encoding="utf-8")
    key = (str(path), text)
    if key not in _PARSED:
        if len(_PARSED) > 256:
            _PARSED.clear()
        _PARSED[key] = parse_matchtype(text, str(path))
    return _PARSED[key].model_copy(deep=True)


def load_matchtypes(home: Any | None = None) -> dict[str, MatchType]:
    """Shipped match types, then the home's ``matchtypes/*.yaml`` (adding or overriding by id)."""
    folders = [SHIPPED]
    if home is not None and Path(home.matchtypes).is_dir():
        folders.append(Path(home.matchtypes))
    found: dict[str, MatchType] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.y*ml")):
            mt = load_file(path)
            found[mt.id] = mt
    return dict(sorted(found.items(), key=lambda kv: (kv[1].priority, kv[0])))


def source_of(home: Any | None, match_type_id: str) -> str:
    """Which file a match type came from (for ``matchtypes list``)."""
    if home is not None and Path(home.matchtypes).is_dir():
        for path in sorted(Path(home.matchtypes).glob("*.y*ml")):
            if yaml.safe_load(path.read_text(encoding="utf-8")).get("id") == match_type_id:
                return str(path)
    for path in sorted(SHIPPED.glob("*.y*ml")):
        if yaml.safe_load(path.read_text(encoding="utf-8")).get("id") == match_type_id:
            return f"shipped:{path.name}"
    return "?"
