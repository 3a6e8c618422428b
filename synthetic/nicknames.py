"""The generator's nickname tables (upper case).

``NICKNAMES`` maps common English nicknames to the forename they stand for; the generator
writes them into some records. A nickname maps to a single canonical forename; ambiguous ones
(``CHRIS``, ``SAM``, ``ALEX``, ``JO``) map to the most common full form. ``INFORMAL`` holds forms
that nickname lists do not, so the matcher cannot know them. The generator needs nothing else.
The matcher never reads these tables: ``anonymise.nicknames`` takes its knowledge from the
maintained ``nicknames`` package, so the two disagree on purpose (the import contracts in
pyproject.toml keep it that way).
"""

from __future__ import annotations

NICKNAMES: dict[str, str] = {
    # men
    "BILL": "WILLIAM", "BILLY": "WILLIAM", "WILL": "WILLIAM", "WILLIE": "WILLIAM", "LIAM": "WILLIAM",
    "BOB": "ROBERT", "BOBBY": "ROBERT", "ROB": "ROBERT", "ROBBIE": "ROBERT", "BERT": "ALBERT",
    "JIM": "JAMES", "JIMMY": "JAMES", "JAMIE": "JAMES",
    "DICK": "RICHARD", "RICK": "RICHARD", "RICHIE": "RICHARD",
    "TOM": "THOMAS", "TOMMY": "THOMAS",
    "TONY": "ANTHONY",
    "DAVE": "DAVID", "DAVY": "DAVID",
    "MIKE": "MICHAEL", "MICK": "MICHAEL", "MICKY": "MICHAEL",
    "CHRIS": "CHRISTOPHER", "KIT": "CHRISTOPHER",
    "ALEX": "ALEXANDER", "SANDY": "ALEXANDER",
    "SAM": "SAMUEL", "SAMMY": "SAMUEL",
    "BEN": "BENJAMIN", "BENNY": "BENJAMIN",
    "DAN": "DANIEL", "DANNY": "DANIEL",
    "JOE": "JOSEPH", "JOEY": "JOSEPH",
    "NICK": "NICHOLAS", "NICKY": "NICHOLAS",
    "STEVE": "STEPHEN", "STEVIE": "STEPHEN",
    "TED": "EDWARD", "EDDIE": "EDWARD", "NED": "EDWARD",
    "CHARLIE": "CHARLES", "CHUCK": "CHARLES",
    "PETE": "PETER",
    "MATT": "MATTHEW",
    "ANDY": "ANDREW", "DREW": "ANDREW",
    "JON": "JONATHAN",
    "TIM": "TIMOTHY",
    "PHIL": "PHILIP",
    "GEOFF": "GEOFFREY",
    "LEN": "LEONARD", "LENNY": "LEONARD",
    "FRED": "FREDERICK", "FREDDIE": "FREDERICK",
    "HARRY": "HENRY", "HAL": "HENRY",
    "JACK": "JOHN", "JOHNNY": "JOHN",
    "GEORDIE": "GEORGE",
    "LARRY": "LAWRENCE",
    # women
    "PEGGY": "MARGARET", "MAGGIE": "MARGARET", "MEG": "MARGARET", "MADGE": "MARGARET",
    "LIZ": "ELIZABETH", "LIZZIE": "ELIZABETH", "BETH": "ELIZABETH", "BETTY": "ELIZABETH", "ELIZA": "ELIZABETH",
    "KATE": "KATHERINE", "KATIE": "KATHERINE", "KATHY": "KATHERINE", "KAT": "KATHERINE",
    "CATH": "CATHERINE", "CATHY": "CATHERINE",
    "SUE": "SUSAN", "SUSIE": "SUSAN",
    "PAT": "PATRICIA", "PATSY": "PATRICIA", "TRISH": "PATRICIA",
    "JENNY": "JENNIFER", "JEN": "JENNIFER",
    "BECKY": "REBECCA", "BECCA": "REBECCA",
    "VICKY": "VICTORIA", "TORI": "VICTORIA",
    "LEXI": "ALEXANDRA",
    "DOT": "DOROTHY", "DOTTIE": "DOROTHY",
    "MOLLY": "MARY", "POLLY": "MARY",
    "SALLY": "SARAH",
    "DEBBIE": "DEBORAH", "DEB": "DEBORAH",
    "JO": "JOANNE",
    "KIM": "KIMBERLEY",
    "ABBY": "ABIGAIL", "ABBIE": "ABIGAIL",
    "NELL": "ELEANOR", "ELLIE": "ELEANOR",
    "ANNIE": "ANNE",
}

#: Informal forms used only by the generator, never by the matcher: British and Australian
#: slang forms that nickname lists (the ``nicknames`` package included) do not hold, so a
#: record carrying one tests how the matcher copes with a forename it cannot fold.
#: Canonical forename (upper) -> informal forms (upper).
INFORMAL: dict[str, tuple[str, ...]] = {
    "KAREN": ("KAZ", "KEZ"), "GARY": ("GAZ", "GAZZA"), "SHARON": ("SHAZ", "SHAZZA"), "BARRY": ("BAZ", "BAZZA"),
    "JONATHAN": ("JONNO",), "DARREN": ("DAZ", "DAZZA"), "TERENCE": ("TEL", "TEZ"), "TERRY": ("TEL", "TEZ"),
    "TREVOR": ("TREV",), "CHARLES": ("CHAZ",), "STEPHEN": ("STEVO",), "STEVEN": ("STEVO",),
    "DEBORAH": ("DEBS",), "MARGARET": ("MAGS",), "REBECCA": ("BEX",), "JULIAN": ("JOOLS",),
    "DAVID": ("DAVO",), "ROBERT": ("ROBBO",), "NATASHA": ("SASH",), "DUNCAN": ("DUNC",),
}
#: Informal forename taken from the surname (MACCA for a McDonald or a MacLeod), for men whose
#: surname starts with one of these prefixes.
SURNAME_INFORMAL: dict[str, str] = {"MC": "MACCA", "MAC": "MACCA"}
