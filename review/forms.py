"""Typed request models: the queue's filters (query string) and the flag forms (POST bodies).

FastAPI validates them before a route runs, so no route parses input by hand; anything
out of type or range is a 422 page naming the field and what is wrong, never a 500 or a
silent change (an unknown outcome, a negative or non-numeric amount, an oversized note).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import Form, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from councilmatch.contracts import OUTCOMES, STATUSES
from review.store import QueueFilter

#: The largest integer a form may carry (the databases' 32-bit INTEGER).
MAX_INT = 2**31 - 1
#: Longest note kept with a decision (characters).
MAX_NOTE = 4000
#: Largest amount a decision may record (pounds).
MAX_AMOUNT = 1_000_000_000


def _blank_is_none(value: Any) -> Any:
    """An empty drop-down ("Any") or an empty field means no value."""
    return None if isinstance(value, str) and not value.strip() else value


def _pounds(value: Any) -> Any:
    """'£1,250.50' -> 1250.5; blank -> None; anything else that is not a finite number is refused."""
    value = _blank_is_none(value)
    if value is None or not isinstance(value, str):
        return value
    try:
        amount = float(value.strip().replace(",", "").lstrip("£"))
    except ValueError:
        raise ValueError("Amount must be a number of pounds, like 1250.00.") from None
    if not math.isfinite(amount):
        raise ValueError("Amount must be a number of pounds, like 1250.00.")
    return amount


Text = Annotated[Annotated[str, Field(max_length=100)] | None, BeforeValidator(_blank_is_none)]
Outcome = Annotated[Literal[OUTCOMES] | None, BeforeValidator(_blank_is_none)]  # type: ignore[valid-type]
Status = Annotated[Literal[STATUSES] | None, BeforeValidator(_blank_is_none)]  # type: ignore[valid-type]
Version = Annotated[int, Field(ge=1, le=MAX_INT)]


class QueueQuery(BaseModel):
    """The queue's filters and page, typed and bounded: out-of-range values are a 422, never a 500."""

    model_config = ConfigDict(extra="ignore")

    match_type: Text = None
    status: Status = None
    priority: Annotated[Annotated[int, Field(ge=0, le=1_000_000)] | None, BeforeValidator(_blank_is_none)] = None
    run: Text = None
    assignee: Text = None
    page: Annotated[int, BeforeValidator(lambda v: _blank_is_none(v) or 1), Field(ge=1, le=1_000_000)] = 1

    def filter(self) -> QueueFilter:
        return QueueFilter(match_type=self.match_type, status=self.status, priority=self.priority,
                           run_id=self.run, assignee=self.assignee)


class DecisionForm(BaseModel):
    """One council's decision on a flag (``version``: the flag version the form was based on)."""

    model_config = ConfigDict(extra="ignore")

    version: Version
    outcome: Outcome = None
    amount: Annotated[float | None, BeforeValidator(_pounds),
                      Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)] = None
    note: Annotated[str, Field(max_length=MAX_NOTE)] = ""
    action: Literal["save", "close"] = "save"

    @property
    def clean_note(self) -> str | None:
        return self.note.strip() or None


class AssignForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Version
    assignee: Annotated[Annotated[str, Field(max_length=80)] | None, BeforeValidator(_blank_is_none)] = None


class ActiveForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    active: Literal["0", "1"]


#: ``?saved=1`` after a redirect: show "Saved." (anything else: a 422).
SavedDep = Annotated[Literal["1"] | None, Query()]
QueueQueryDep = Annotated[QueueQuery, Query()]
DecisionFormDep = Annotated[DecisionForm, Form()]
AssignFormDep = Annotated[AssignForm, Form()]
ActiveFormDep = Annotated[ActiveForm, Form()]
