"""The data contracts every stage relies on (see docs/architecture.md).

Change these deliberately: ingest produces the canonical frame, anonymise turns
it into the pseudonymised frame, matching reads that and writes flags, review
reads flags. Each is a pandas DataFrame with exactly the columns named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    #: canonical fields a feed of this data set must map (besides record_id)
    required: tuple[str, ...]
    #: canonical fields it may map
    optional: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in [
        DatasetSpec(
            "council_tax", "Council tax (with single person discount)",
            ("surname", "address_lines", "postcode", "period_start", "discount"),
            ("forenames", "dob", "uprn", "period_end", "email", "phone", "amount"),
        ),
        DatasetSpec(
            "electoral_register", "Electoral register",
            ("forenames", "surname", "address_lines", "postcode"),
            ("dob", "uprn", "period_start", "period_end", "previous_surname"),
        ),
        DatasetSpec(
            "tenancy", "Housing tenancies",
            ("forenames", "surname", "dob", "address_lines", "postcode", "period_start"),
            ("nino", "uprn", "period_end", "email", "phone", "previous_surname"),
        ),
        DatasetSpec(
            "waiting_list", "Housing waiting list",
            ("forenames", "surname", "dob", "address_lines", "postcode", "period_start"),
            ("nino", "uprn", "period_end", "email", "phone", "previous_surname"),
        ),
        DatasetSpec(
            "payroll", "Payroll",
            ("forenames", "surname", "dob", "nino", "period_start"),
            ("address_lines", "postcode", "uprn", "period_end", "bank_sort_code",
             "bank_account", "email", "phone", "amount", "previous_surname"),
        ),
        DatasetSpec(
            "blue_badge", "Blue badges",
            ("forenames", "surname", "dob", "address_lines", "postcode", "period_start", "period_end"),
            ("nino", "uprn", "phone", "email"),
        ),
        DatasetSpec(
            "concessionary_travel", "Concessionary travel passes",
            ("forenames", "surname", "dob", "address_lines", "postcode", "period_start"),
            ("uprn", "period_end", "last_used"),
        ),
        DatasetSpec(
            "council_tax_reduction", "Council tax reduction",
            ("forenames", "surname", "dob", "address_lines", "postcode", "period_start"),
            ("nino", "uprn", "period_end", "amount", "email", "phone", "previous_surname"),
        ),
        DatasetSpec(
            "deceased", "Deceased persons (central feed)",
            ("forenames", "surname", "dob", "date_of_death"),
            ("nino", "address_lines", "postcode", "uprn", "previous_surname"),
        ),
    ]
}

# --------------------------------------------------------------------------
# Canonical record: clear, exists only in memory between ingest and anonymise
# --------------------------------------------------------------------------

#: Identifying fields. Standardised forms produced by ingest (missing = NA):
#:  forenames / first_name / middle_names / surname / previous_surname:
#:      upper-case ASCII letters and single spaces; titles, punctuation and
#:      apostrophes removed, diacritics folded, hyphens -> space
#:      ("O'Brien-Smith" -> "OBRIEN SMITH"); first_name is the first forename,
#:      middle_names the rest.
#:  dob: datetime64[ns] (midnight).
#:  nino: "AB123456C" (upper, no spaces).
#:  address_lines: upper, punctuation removed, single spaces, common
#:      abbreviations expanded (RD -> ROAD, ST -> STREET, AVE -> AVENUE, ...),
#:      postcode not included.
#:  postcode: "SW1A 1AA" (outward, one space, inward).
#:  uprn: digits without leading zeros.
#:  email: lower-case, trimmed.  phone: digits, national form ("07700900123").
#:  bank_sort_code: 6 digits.  bank_account: 8 digits.
IDENTIFIERS: tuple[str, ...] = (
    "forenames", "first_name", "middle_names", "surname", "previous_surname", "dob", "nino",
    "address_lines", "postcode", "uprn", "email", "phone", "bank_sort_code", "bank_account",
)

#: Non-identifying fields a match type may need (kept in the pseudonymised store).
#:  period_start / period_end / date_of_death / last_used: datetime64[ns];
#:  discount: bool (single person discount); amount: float64 (pounds).
NON_IDENTIFYING: tuple[str, ...] = (
    "period_start", "period_end", "date_of_death", "last_used", "discount", "amount",
)

#: Reference columns present on both the canonical and the pseudonymised record.
REFERENCE: tuple[str, ...] = ("council", "dataset", "record_id")

CANONICAL_COLUMNS: tuple[str, ...] = REFERENCE + IDENTIFIERS + NON_IDENTIFYING

#: Fields a feed maps from source columns (first_name/middle_names are derived).
MAPPABLE_FIELDS: tuple[str, ...] = ("record_id",) + tuple(
    f for f in IDENTIFIERS + NON_IDENTIFYING if f not in ("first_name", "middle_names")
)

DATE_FIELDS: tuple[str, ...] = ("dob", "period_start", "period_end", "date_of_death", "last_used")

# --------------------------------------------------------------------------
# Pseudonymised record: Parquet in store/pseudonymised/<dataset>/<council>/<extract_id>.parquet
# --------------------------------------------------------------------------

#: Token columns: int64, the first 8 bytes (big-endian, signed) of
#: HMAC-SHA-256(subkey(purpose), normalised value); 0 means "missing".
#: Columns sharing a purpose are comparable with each other (e.g. t_surname
#: with t_prev_surname and t_forename, for name swaps and marriage).
TOKEN_COLUMNS: dict[str, str] = {
    # column:            purpose
    "t_nino": "nino",
    "t_dob": "dob",                   # YYYY-MM-DD
    "t_dob_unordered": "dob_unordered",  # year + sorted(day, month): survives a day/month transposition
    "t_yob": "yob",                   # year of birth
    "t_yob_jan1": "yob",              # year of birth where the date is 1 January, else 0: systems
                                      # write 1 January when they know only the year (the yob key,
                                      # so it can meet the other record's year)
    "t_dob_ym": "dob_ym",             # year + month: with _md and _yd, one mistyped part of a date
    "t_dob_md": "dob_md",             # month + day
    "t_dob_yd": "dob_yd",             # year + day
    "t_forename": "name",             # first forename
    "t_surname": "name",
    "t_prev_surname": "name",
    "t_surname_first": "name",        # first and last word of a multi-word surname (SMITH JONES,
    "t_surname_last": "name",         # VAN DER BERG -> BERG); 0 for a one-word surname
    "t_forename_canon": "forename_canon",  # nickname-folded (BILL -> WILLIAM)
    "t_forename_phon": "name_phonetic",    # phonetic code of first forename
    "t_surname_phon": "name_phonetic",
    "t_initial": "name",              # first letter of first forename (the "name" key, so that an
                                      # initial-only forename can be compared with it)
    "t_name_sorted": "name_sorted",   # sorted(forename, surname): swap-invariant
    "t_postcode": "postcode",
    "t_pc_sector": "postcode_sector",     # "SW1A 1"
    "t_pc_district": "postcode_district", # "SW1A"
    "t_premise": "premise",           # house/flat number(s) + postcode
    "t_address": "address",           # full normalised address + postcode
    "t_uprn": "uprn",
    "t_email": "email",
    "t_phone": "phone",
    "t_bank": "bank",                 # sort code + account number
}

#: Salted Bloom columns -> the token columns that agree exactly when two records share the
#: salt (anonymise.variants.BLOOM_SALTS): only such pairs can have a meaningful Dice, so
#: matching measures these levels' u among same-salt random pairs (or a subset of them).
BLOOM_SALT_TOKENS: dict[str, tuple[str, ...]] = {
    "bf_forenames": ("t_surname_phon",),  # a subset of the salt group (same first letter of the code)
    "bf_surname": ("t_yob", "t_initial"),
}

#: Keyed similarity encodings: fixed-length bytes (BLOOM_BYTES[col]) holding a
#: q-gram Bloom filter built from keyed hashes; all-zero bytes means missing.
BLOOM_BYTES: dict[str, int] = {
    "bf_forenames": 64,
    "bf_surname": 64,
    "bf_address": 128,
}

#: Keyed one-edit neighbourhoods (anonymise.encodings.edit_neighbourhoods): fixed-length
#: bytes, sorted 4-byte keyed hashes of the name and of each one-letter deletion of it;
#: all-zero bytes means missing. Two names one keystroke apart share an entry. Unsalted,
#: so a typo is still seen when the salted name filters cannot be compared. The National
#: Insurance number has one too: a mistyped or transposed digit is a common keying error.
EDIT_BYTES: dict[str, int] = {
    "ed_forename": 64,
    "ed_surname": 64,
    "ed_nino": 48,
}

#: Keyed nickname neighbourhoods (anonymise.encodings.neighbourhoods): the first forename and
#: every full name the nickname list gives it (PEGGY -> PEGGY, MARGARET, MARGARETTA, MARGUERITE),
#: as sorted 4-byte keyed hashes; all-zero bytes means missing. A name and its nickname, or two
#: nicknames of one name, share an entry: one folded token per name cannot hold a form of
#: several names (TONY: ANTHONY or ANTONIA).
NICKNAME_BYTES: dict[str, int] = {
    "nk_forename": 64,
}

#: Keyed forename-word neighbourhoods (anonymise.encodings.neighbourhoods) of *all* the forenames,
#: not only the first: a person known by a middle name (ROBERT DALE / DALE) or by its initial
#: (E / BRYANNA EMMA). ``nf_words``: each spelled-out forename; ``nf_bare``: the initials of a
#: record that spells out no forename (E, M J); ``nf_initials``: the initial of each forename,
#: spelled out or not (``nf_bare`` and ``nf_initials`` share a key, so the initials of a record
#: that spells out none can meet another of the other's forenames: E / CASSANDRA E). Sorted 4-byte keyed hashes; all-zero bytes means missing.
FORENAME_WORD_BYTES: dict[str, int] = {
    "nf_words": 20,
    "nf_bare": 8,
    "nf_initials": 16,
}

#: Every fixed-length bytes column of the pseudonymised record.
ENCODED_BYTES: dict[str, int] = {**BLOOM_BYTES, **EDIT_BYTES, **NICKNAME_BYTES, **FORENAME_WORD_BYTES}

#: Columns of a term-frequency table (matching.incremental.tf_frame): a token and its share.
TF_COLUMNS: tuple[str, ...] = ("token", "freq")

#: Columns that a holder of the store's at-rest key alone cannot open (anonymise.at_rest seals
#: them under a keyring-derived column key): the condition fields, every deterministic keyed
#: encoding (one value per name, date or address, so its frequencies name people: it cannot be
#: hardened the way the salted Bloom filters are) and term-frequency tables of such tokens.
#: A keyring holder learns nothing from them it could not compute; the link step holds it.
KEYRING_SEALED: frozenset[str] = frozenset(
    NON_IDENTIFYING + tuple(TOKEN_COLUMNS) + tuple(EDIT_BYTES) + tuple(NICKNAME_BYTES)
    + tuple(FORENAME_WORD_BYTES) + TF_COLUMNS)

PSEUDONYMISED_COLUMNS: tuple[str, ...] = (
    REFERENCE + ("extract_id", "key_id") + tuple(TOKEN_COLUMNS) + tuple(ENCODED_BYTES) + NON_IDENTIFYING
)

# --------------------------------------------------------------------------
# Flags: store/flags/<run_id>.parquet, then the review store
# --------------------------------------------------------------------------

FLAG_COLUMNS: tuple[str, ...] = (
    "flag_id",           # str: stable hash of match type + both record references
    "run_id",            # str
    "match_type",        # str: match type id
    "left_council", "left_dataset", "left_record_id",
    "right_council", "right_dataset", "right_record_id",
    "match_probability",  # float64 in [0, 1]
    "match_weight",       # float64, log2 Bayes factor incl. prior
    "evidence",           # str: JSON {comparison: {"level": str, "weight": float}}
    "evidence_hash",      # str: changes only when the evidence levels change
    "priority",           # int: 1 = highest
    "key_id",             # str: key the pseudonyms were made under
    "first_seen",         # str ISO date of the run that first raised it
    "last_seen",          # str ISO date of the latest run that raised it
)

OUTCOMES: tuple[str, ...] = ("fraud", "error", "no_issue", "already_known")
STATUSES: tuple[str, ...] = ("new", "in_review", "closed")
