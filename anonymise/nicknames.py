"""Nickname folding for the ``forename_canon`` token (BILL -> WILLIAM).

Uses the shared table ``synthetic.nicknames.NICKNAMES`` (the generator writes its
nicknames from it, so both sides fold the same way); the small fallback below is
only used if that module is absent.
"""

from __future__ import annotations

_FALLBACK: dict[str, str] = {
    "BILL": "WILLIAM", "BILLY": "WILLIAM", "WILL": "WILLIAM", "WILLIE": "WILLIAM", "LIAM": "WILLIAM",
    "BOB": "ROBERT", "BOBBY": "ROBERT", "ROB": "ROBERT", "ROBBIE": "ROBERT", "BERT": "ROBERT",
    "DICK": "RICHARD", "RICK": "RICHARD", "RICH": "RICHARD", "RICHIE": "RICHARD",
    "JIM": "JAMES", "JIMMY": "JAMES", "JAMIE": "JAMES",
    "JACK": "JOHN", "JOHNNY": "JOHN", "JON": "JOHN",
    "MIKE": "MICHAEL", "MICK": "MICHAEL", "MICKEY": "MICHAEL",
    "TOM": "THOMAS", "TOMMY": "THOMAS",
    "DAVE": "DAVID", "DAVEY": "DAVID",
    "STEVE": "STEPHEN", "STEVEN": "STEPHEN",
    "CHRIS": "CHRISTOPHER", "KIT": "CHRISTOPHER",
    "TONY": "ANTHONY", "ANDY": "ANDREW", "DREW": "ANDREW",
    "PETE": "PETER", "ED": "EDWARD", "EDDIE": "EDWARD", "TED": "EDWARD", "NED": "EDWARD",
    "SAM": "SAMUEL", "SAMMY": "SAMUEL", "BEN": "BENJAMIN", "BENNY": "BENJAMIN",
    "DAN": "DANIEL", "DANNY": "DANIEL", "MATT": "MATTHEW", "NICK": "NICHOLAS",
    "JOE": "JOSEPH", "JOEY": "JOSEPH", "ALEX": "ALEXANDER", "SANDY": "ALEXANDER",
    "CHARLIE": "CHARLES", "CHUCK": "CHARLES", "HARRY": "HENRY", "HAL": "HENRY",
    "FRED": "FREDERICK", "FREDDIE": "FREDERICK", "GEOFF": "GEOFFREY", "GERRY": "GERALD",
    "KEN": "KENNETH", "KENNY": "KENNETH", "LEN": "LEONARD", "LENNY": "LEONARD",
    "PHIL": "PHILIP", "RAY": "RAYMOND", "RON": "RONALD", "RONNIE": "RONALD",
    "TIM": "TIMOTHY", "TERRY": "TERENCE", "GREG": "GREGORY", "DOUG": "DOUGLAS",
    "LIZ": "ELIZABETH", "LIZZIE": "ELIZABETH", "BETH": "ELIZABETH", "BETTY": "ELIZABETH",
    "ELIZA": "ELIZABETH", "LISA": "ELIZABETH", "BESS": "ELIZABETH",
    "KATE": "CATHERINE", "KATIE": "CATHERINE", "CATH": "CATHERINE", "CATHY": "CATHERINE",
    "KATHY": "CATHERINE", "KATHERINE": "CATHERINE", "KATHRYN": "CATHERINE",
    "MAGGIE": "MARGARET", "MEG": "MARGARET", "PEGGY": "MARGARET", "MADGE": "MARGARET",
    "SUE": "SUSAN", "SUSIE": "SUSAN", "JENNY": "JENNIFER", "JEN": "JENNIFER",
    "PATSY": "PATRICIA", "PAT": "PATRICIA", "TRISH": "PATRICIA",
    "MANDY": "AMANDA", "BECKY": "REBECCA", "BECCA": "REBECCA",
    "VICKY": "VICTORIA", "VIKKI": "VICTORIA", "SALLY": "SARAH", "SAL": "SARAH",
    "DEBBIE": "DEBORAH", "DEB": "DEBORAH", "JACKIE": "JACQUELINE",
    "MOLLY": "MARY", "POLLY": "MARY", "ANNIE": "ANNE", "ANN": "ANNE", "NANCY": "ANNE",
    "JO": "JOANNE", "JESS": "JESSICA", "JESSIE": "JESSICA", "ABBY": "ABIGAIL",
    "ELLIE": "ELEANOR", "NELL": "ELEANOR",
    "FRAN": "FRANCES", "FRANNIE": "FRANCES", "GILL": "GILLIAN", "JILL": "GILLIAN",
    "VAL": "VALERIE", "CHRISSIE": "CHRISTINE", "TINA": "CHRISTINE",
    "DOT": "DOROTHY", "DOTTIE": "DOROTHY", "DOLLY": "DOROTHY",
}


def _load() -> dict[str, str]:
    try:
        from synthetic.nicknames import NICKNAMES as shared  # type: ignore[import-not-found]
    except ImportError:
        return dict(_FALLBACK)
    return {str(k).upper(): str(v).upper() for k, v in shared.items()}


NICKNAMES: dict[str, str] = _load()
