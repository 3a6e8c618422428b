"""The nickname folding behind ``t_forename_canon`` (anonymise.nicknames)."""

from anonymise.nicknames import nickname_table


def _canon(name: str) -> str:
    return nickname_table().get(name, name)


def test_a_full_name_and_its_common_short_forms_fold_together() -> None:
    """The package lists names both ways and under rare long forms (MARGARET under GRETCHEN,
    PEGGY under MARGUERITE): each must fold to the full name most forms point at, or the
    nickname level never fires for the commonest pairs."""
    groups = {
        "MARGARET": ["PEGGY", "MEG", "MAGGIE"],
        "RICHARD": ["DICK"],
        "EDWARD": ["TED", "NED"],
        "ELIZABETH": ["LIZ", "LIZZIE", "BETTY"],
        "ROBERT": ["BOB"],
        "JAMES": ["JIM"],
        "SUSAN": ["SUE"],
        "THOMAS": ["TOM"],
        "HENRY": ["HARRY"],
        "NICHOLAS": ["NICK"],
    }
    for full, short in groups.items():
        assert _canon(full) == full, (full, _canon(full))
        for form in short:
            assert _canon(form) == full, (form, _canon(form), full)
    assert _canon("MARY") == _canon("POLLY") == _canon("MOLLY")


def test_names_that_are_no_one_s_nickname_stay_themselves() -> None:
    for name in ("XQZWY", "OKONKWO", "SIOBHAN"):
        assert _canon(name) == name
    assert _canon("KASIA") == "KATARZYNA"  # the extra table still applies
    assert len({_canon(n) for n in ("JOHN", "JAMES", "WILLIAM", "ROBERT", "RICHARD", "MICHAEL", "DAVID", "THOMAS",
                                    "MARGARET", "ELIZABETH", "SUSAN", "SARAH")}) == 12  # different people's names


def test_corrections_win_over_the_package() -> None:
    from anonymise.nicknames import PREFERRED

    assert _canon("BILL") == _canon("WILLIAM") == "WILLIAM"
    assert all(_canon(nick) == full for nick, full in PREFERRED.items())


def test_nickname_neighbourhoods_meet_for_every_form_of_a_name() -> None:
    """A form of several names (TONY) must meet each of them, which one folded token cannot do;
    unrelated names must not meet."""
    import numpy as np
    import pandas as pd

    from anonymise.encodings import neighbourhoods, shares_entry
    from anonymise.nicknames import nickname_neighbourhood

    names = ["TONY", "ANTHONY", "ANTONIA", "PEGGY", "MARGARET", "MEG", "JOHN", "SUSAN", "XQZWY"]
    matrix = neighbourhoods(pd.Series(names), b"k" * 32, 16, nickname_neighbourhood)

    def meet(a: str, b: str) -> bool:
        return bool(shares_entry(matrix[[names.index(a)]], matrix[[names.index(b)]])[0])

    assert meet("TONY", "ANTHONY") and meet("TONY", "ANTONIA")
    assert meet("PEGGY", "MARGARET") and meet("PEGGY", "MEG") and meet("MEG", "MARGARET")
    assert not meet("JOHN", "SUSAN") and not meet("MARGARET", "SUSAN") and not meet("XQZWY", "JOHN")
    assert np.count_nonzero(matrix[names.index("XQZWY")]) == 4  # a name nobody lists: itself only
