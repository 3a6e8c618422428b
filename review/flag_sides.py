"""How a flag looks from one council: its own side(s) and the other side, and how record fields are labelled.

(``FlagSide`` is one record of a flag; ``matching.comparisons.Side`` is a whole data set's columns.)
"""

from __future__ import annotations

from dataclasses import dataclass

from review.models import CouncilReview, ReviewItem


@dataclass(frozen=True)
class FlagSide:
    name: str          # "left" | "right"
    council: str
    dataset: str
    record_id: str
    own: bool


def sides(item: ReviewItem, council: str) -> list[FlagSide]:
    return [FlagSide("left", item.left_council, item.left_dataset, item.left_record_id, item.left_council == council),
            FlagSide("right", item.right_council, item.right_dataset, item.right_record_id,
                 item.right_council == council)]


def other_side(item: ReviewItem, council: str) -> FlagSide:
    """The side that is not the council's own (the right side if both are)."""
    left, right = sides(item, council)
    return right if left.own else left


def own_review(item: ReviewItem, council: str) -> CouncilReview | None:
    return next((r for r in item.reviews if r.council == council), None)


#: How a re-identified record's fields are shown, in this order (others are not shown).
RECORD_FIELDS: dict[str, str] = {
    "forenames": "Forenames", "surname": "Surname", "previous_surname": "Previous surname",
    "dob": "Date of birth", "nino": "National Insurance number", "address_lines": "Address",
    "postcode": "Postcode", "uprn": "UPRN", "email": "Email", "phone": "Phone",
    "bank_sort_code": "Bank sort code", "bank_account": "Bank account", "extract_id": "From extract",
}


def record_rows(fields: dict[str, str | None]) -> list[tuple[str, str]]:
    """(label, value) of the fields the vault returned with a value."""
    return [(label, fields[k]) for k, label in RECORD_FIELDS.items() if fields.get(k) not in (None, "")]


def field_label(name: str) -> str:
    """A comparison or field name as an investigator reads it."""
    return RECORD_FIELDS.get(name) or name.replace("_", " ").capitalize()
