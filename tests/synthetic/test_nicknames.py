"""The shared nickname table: upper case, and every canonical forename is one the generator can draw."""

from synthetic.names import pools
from synthetic.nicknames import NICKNAMES


def test_nickname_table_is_upper_case_and_points_at_real_forenames() -> None:
    forenames = {n.upper() for sex in ("male", "female") for n in pools()[sex].names}
    assert len(NICKNAMES) >= 60
    for nick, canon in NICKNAMES.items():
        assert nick == nick.upper() and canon == canon.upper() and nick != canon
        assert canon in forenames, canon
        assert nick not in set(NICKNAMES.values()), nick          # no chains (BILL -> WILL -> WILLIAM)
    assert NICKNAMES["BILL"] == "WILLIAM" and NICKNAMES["PEGGY"] == "MARGARET"
    assert NICKNAMES["BOB"] == "ROBERT" and NICKNAMES["LIZ"] == "ELIZABETH"
