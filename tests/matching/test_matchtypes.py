import pytest

from councilmatch.home import Home
from councilmatch.matchtype_ids import ALL
from matching.matchtype import MatchTypeError, load_file, load_matchtypes

GOOD = """\
id: {id}
title: A test match type
reason: Something worth a look.
left: payroll
right: deceased
scope: any
link: same_person
conditions: [left_active_after_right_date_of_death]
priority: 1
linkage:
  blocking:
    - [t_nino]
    - [t_dob, t_surname]
  comparisons:
    - {{use: name, field: surname}}
    - {{use: date_of_birth}}
    - {{use: exact, column: t_nino, name: nino}}
  threshold: 0.5
"""


def test_shipped_match_types_cover_the_ids():
    types = load_matchtypes()
    assert set(ALL) <= set(types)
    assert types["spd_other_adult"].link == "same_address_different_person"
    assert types["tenancy_two_boroughs"].scope == "different_councils"
    assert types["tenancy_two_boroughs"].dedupe


@pytest.mark.parametrize("bad, line, key", [
    ("left: payroll", "left: payrol", (4, "left")),
    ("scope: any", "scope: everywhere", (6, "scope")),
    ("    - [t_dob, t_surname]", "    - [t_dob, t_surnam]", (13, "linkage.blocking.1.1")),
    ("    - {use: date_of_birth}", "    - {use: birthday}", (16, "linkage.comparisons.1.use")),
    ("conditions: [left_active_after_right_date_of_death]", "conditions: [whenever]", (8, "conditions")),
    ("priority: 1", "priority: 0", (9, "priority")),
    ("{use: exact, column: t_nino, name: nino}", "{use: exact, column: t_nino, name: nino, edits: t_nino}",
     (17, "linkage.comparisons.2.exact.edits")),
])
def test_schema_errors_name_file_line_and_key(tmp_path, bad, line, key):
    text = GOOD.format(id="payroll_after_death").replace(bad, line)
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(MatchTypeError) as err:
        load_file(path)
    lineno, dotted = key
    assert f"{path}:{lineno}: {dotted}:" in str(err.value)


def test_missing_key_and_bad_yaml(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(GOOD.format(id="x").replace("reason: Something worth a look.\n", ""))
    with pytest.raises(MatchTypeError, match=r"m.yaml:1: reason: Field required"):
        load_file(path)
    path.write_text("id: [unclosed\n")
    with pytest.raises(MatchTypeError, match=r"m.yaml:\d+: not valid YAML"):
        load_file(path)


def test_home_adds_and_overrides_by_id(tmp_path):
    home = Home.resolve(tmp_path)
    home.matchtypes.mkdir(parents=True)
    (home.matchtypes / "new.yaml").write_text(GOOD.format(id="payroll_after_death"))
    (home.matchtypes / "override.yaml").write_text(
        GOOD.format(id="blue_badge_deceased").replace("priority: 1", "priority: 9"))
    types = load_matchtypes(home)
    assert "payroll_after_death" in types
    assert types["blue_badge_deceased"].priority == 9
    assert list(types)[-1] == "blue_badge_deceased"  # sorted by priority
