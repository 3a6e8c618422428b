"""Data-quality profile comparison: alerts on a feed's shape change, none on an ordinary night."""

from __future__ import annotations

from ingest.quality import compare


def _profile(rows: int = 1000, **fields: dict) -> dict:
    base = {"missing_rate": 0.0, "invalid_rate": 0.0, "placeholder_rate": 0.0}
    return {"rows_in": rows, "fields": {f: {**base, **v} for f, v in fields.items()}}


def test_no_previous_extract_no_alerts() -> None:
    assert compare(None, _profile(surname={})) == {"previous_extract": None, "alerts": []}


def test_ordinary_drift_raises_nothing() -> None:
    before = _profile(1000, surname={"missing_rate": 0.01}, dob={"date_style": "99/99/9999 day-first"})
    now = _profile(980, surname={"missing_rate": 0.02, "placeholder_rate": 0.01},
                   dob={"date_style": "99/99/9999 unclear"})
    assert compare(before, now, "x")["alerts"] == []


def test_each_shape_change_raises_its_alert() -> None:
    before = _profile(1000, phone={"missing_rate": 0.2}, email={}, dob={"date_style": "99/99/9999 day-first"},
                      surname={"placeholder_rate": 0.01}, nino={"invalid_rate": 0.01})
    now = _profile(400, phone={"missing_rate": 1.0, "not_in_header": True}, email={"missing_rate": 1.0},
                   dob={"date_style": "99/99/9999 month-first"}, surname={"placeholder_rate": 0.2},
                   nino={"invalid_rate": 0.3})
    change = compare(before, now, "tenancy_1-abc")
    assert change["previous_extract"] == "tenancy_1-abc"
    assert change["alerts"] == [
        "row count fell by more than half: 1,000 -> 400",
        "phone: its column is no longer in the header (renamed or dropped?)",
        "email: column emptied (missing 0.0% -> 100.0%)",
        "dob: date format changed (99/99/9999 day-first -> 99/99/9999 month-first)",
        "surname: placeholders rose (1.0% -> 20.0%)",
        "nino: invalid values rose (1.0% -> 30.0%)",
    ]
    assert change["fields"]["surname"]["placeholder_rate"] == 0.19


def test_a_date_fields_style_is_its_most_common_shape_and_order() -> None:
    """Shapes of the sent text: digits as 9, ASCII letters as a, anything else as sent."""
    from collections import Counter

    import numpy as np
    import pandas as pd

    from ingest.quality import ProfileBuilder

    dates = ["13/02/1990", "01/12/1985", "3/4/2001", "UNKNOWN", "1 Jan 1990", "ÉTÉ 12", None]
    builder = ProfileBuilder(["dob"], [])
    builder.add_batch({"dob": pd.Series(dates, dtype=object)}, len(dates), {}, Counter(), Counter())
    assert builder.shapes["dob"] == {"99/99/9999": 2, "9/9/9999": 1, "aaaaaaa": 1, "9 aaa 9999": 1, "ÉaÉ 99": 1}
    assert builder.missing["dob"] == 1
    profile = builder.finish(pd.DataFrame({"dob": pd.Series([], dtype=object)}), 0, len(dates))
    assert profile["fields"]["dob"]["date_style"] == "99/99/9999 day-first"
    assert np.isclose(profile["fields"]["dob"]["missing_rate"], 1 / 7, atol=1e-4)


def test_shapes_by_byte_lookup_are_the_regex_shapes() -> None:
    """The byte lookup gives what replacing [0-9] by 9 and [A-Za-z] by a gives, non-ASCII kept,
    on slices (an offset into the buffers) and on both Arrow string types."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from ingest.quality import _shape_counts

    def by_regex(arr: pa.Array) -> dict:
        shapes = pc.replace_substring_regex(pc.replace_substring_regex(arr, "[0-9]", "9"), "[A-Za-z]", "a")
        counts = pc.value_counts(shapes)
        return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=30), st.integers(0, 5),
           st.sampled_from([pa.string(), pa.large_string()]))
    def check(values: list, start: int, kind: pa.DataType) -> None:
        arr = pa.array(values, kind).slice(min(start, len(values)))
        assert _shape_counts(arr) == by_regex(arr)

    check()
