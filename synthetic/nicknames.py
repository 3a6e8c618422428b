"""Common English nicknames and the forename they stand for (upper case).

Shared data: the generator writes nicknames into some records, and the
anonymise stage folds them back (``BILL`` -> ``WILLIAM``) before hashing the
``forename_canon`` token. Keep it a plain table so both sides read the same one.
A nickname maps to a single canonical forename; ambiguous ones (``CHRIS``,
``SAM``, ``ALEX``, ``JO``) map to the most common full form.
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
