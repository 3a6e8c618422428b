"""Proposal scoring: header and values must agree for a sure proposal; samples are masked."""

from __future__ import annotations

import pandas as pd

from ingest.propose import header_score, mask_value, match_columns, resolve_typed_columns, value_fit


def _frame(cols: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(cols).astype("string")


def test_a_usual_header_whose_values_do_not_fit_is_not_sure() -> None:
    frame = _frame({"Ref": ["A1", "A2", "A3"], "UPRN": ["High Street", "Mare Street", "Low Road"],
                    "DOB": ["soon", "later", "never"]})
    chosen = match_columns(frame, list(frame.columns), ["record_id", "uprn", "dob"])
    assert chosen["record_id"].sure
    assert not chosen["uprn"].sure and "values fit 0%" in chosen["uprn"].how
    assert not chosen["dob"].sure


def test_a_fuzzy_header_with_unfitting_values_is_not_proposed() -> None:
    # issue 15: 'Property Addr 2' was the UPRN by a fuzzy header score of 0.90
    assert header_score("Property Addr 2", "uprn")[1].startswith("fuzzy")
    frame = _frame({"Property Addr 2": ["Camden Town", "Hackney", "Bow"]})
    chosen = match_columns(frame, list(frame.columns), ["uprn", "address_lines"])
    assert "uprn" not in chosen and chosen["address_lines"].columns == ["Property Addr 2"]


def test_another_persons_column_is_never_that_persons_field() -> None:
    for header, fld in [("Partner NINO", "nino"), ("Joint Tenant Surname", "surname"), ("Previous Address", "address_lines"),
                        ("Landlord Phone", "phone")]:
        assert header_score(header, fld) == (0.0, "another person's")
    assert header_score("Previous Surname", "previous_surname")[0] == 1.0


def test_value_only_proposals_are_to_be_checked() -> None:
    frame = _frame({"Ref": ["A1", "A2"], "Col7": ["AB123456C", "JG103759A"]})
    chosen = match_columns(frame, list(frame.columns), ["record_id", "nino"])
    assert chosen["nino"].columns == ["Col7"] and not chosen["nino"].sure and chosen["nino"].how.startswith("values only")


def test_value_fit_rules() -> None:
    assert value_fit(pd.Series(["AB123456C", "QQ123456C"]), "nino")[0] == 0.5
    assert value_fit(pd.Series(["100023336956", "1234567890123"]), "uprn")[0] == 0.5
    assert value_fit(pd.Series(["03/04/1981", "31/02/1980"]), "dob") == (0.5, "%d/%m/%Y")
    assert value_fit(pd.Series(["01/01/2090"]), "dob")[0] == 0.0  # a birth date in the future does not fit
    assert value_fit(pd.Series(["Zoë", "O'Brien", "J0nes"]), "surname")[0] == 2 / 3
    assert value_fit(pd.Series(["", None]), "surname") == (None, None)


def test_masked_samples_keep_the_shape_only() -> None:
    assert mask_value("AB 12 34 56 c") == "XX 99 99 99 x"
    assert mask_value("Zoë O'Brien") == "Xxx X'Xxxxx"
    assert len(mask_value("x" * 100)) == 25


def test_typed_columns_are_checked_against_the_header() -> None:
    header = ["Tenancy Ref", "First  Names"]
    assert resolve_typed_columns(" tenancy ref , first names", header) == (["Tenancy Ref", "First  Names"], [])
    assert resolve_typed_columns("Tenancy Ref, Surname", header) == (["Tenancy Ref"], ["Surname"])
    assert resolve_typed_columns("", header) == ([], [])
