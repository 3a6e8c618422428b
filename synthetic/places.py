"""Boroughs in generation order, their postcode districts, and street names.

The order is fixed (independent of the seed) so ``--boroughs 3`` always means
Camden, Hackney and Islington: tests and benchmarks can name their councils.
"""

from __future__ import annotations

from councilmatch.councils import LONDON_BOROUGHS

_CODE = {name: code for code, name in LONDON_BOROUGHS.items()}

#: Borough names in the order ``--boroughs N`` takes them.
BOROUGH_ORDER: tuple[str, ...] = (
    "Camden", "Hackney", "Islington", "Lambeth", "Southwark", "Tower Hamlets", "Newham",
    "Haringey", "Lewisham", "Westminster", "Brent", "Ealing", "Greenwich", "Wandsworth",
    "Hammersmith and Fulham", "Kensington and Chelsea", "Barnet", "Enfield", "Croydon",
    "Waltham Forest", "Redbridge", "Hounslow", "Hillingdon", "Harrow", "Merton", "Sutton",
    "Kingston upon Thames", "Richmond upon Thames", "Bromley", "Bexley", "Havering",
    "Barking and Dagenham", "City of London",
)
assert sorted(BOROUGH_ORDER) == sorted(LONDON_BOROUGHS.values())

#: ONS codes in generation order.
COUNCIL_ORDER: tuple[str, ...] = tuple(_CODE[name] for name in BOROUGH_ORDER)

#: A few real postcode districts per borough (outward codes).
POSTCODE_DISTRICTS: dict[str, tuple[str, ...]] = {
    "Camden": ("NW1", "NW3", "NW5", "NW6", "WC1"),
    "Hackney": ("E2", "E5", "E8", "E9", "N16"),
    "Islington": ("N1", "N5", "N7", "N19", "EC1"),
    "Lambeth": ("SE11", "SW2", "SW4", "SW9", "SE27"),
    "Southwark": ("SE1", "SE5", "SE15", "SE16", "SE22"),
    "Tower Hamlets": ("E1", "E3", "E14", "E1W"),
    "Newham": ("E6", "E7", "E12", "E13", "E15", "E16"),
    "Haringey": ("N4", "N8", "N15", "N17", "N22"),
    "Lewisham": ("SE4", "SE6", "SE13", "SE14", "SE23"),
    "Westminster": ("W1", "W2", "W9", "SW1", "NW8"),
    "Brent": ("NW2", "NW10", "HA0", "HA9"),
    "Ealing": ("W5", "W7", "W13", "UB1", "UB6"),
    "Greenwich": ("SE3", "SE7", "SE9", "SE10", "SE18"),
    "Wandsworth": ("SW11", "SW12", "SW15", "SW17", "SW18"),
    "Hammersmith and Fulham": ("W6", "W12", "W14", "SW6"),
    "Kensington and Chelsea": ("W8", "W10", "W11", "SW3", "SW5", "SW10"),
    "Barnet": ("N2", "N3", "N12", "NW4", "NW7", "EN5"),
    "Enfield": ("N9", "N13", "N18", "N21", "EN1", "EN3"),
    "Croydon": ("CR0", "CR2", "CR7", "SE25"),
    "Waltham Forest": ("E4", "E10", "E11", "E17"),
    "Redbridge": ("IG1", "IG2", "IG4", "IG8", "E18"),
    "Hounslow": ("TW3", "TW4", "TW5", "TW7", "W4"),
    "Hillingdon": ("UB3", "UB4", "UB8", "UB10", "HA4"),
    "Harrow": ("HA1", "HA2", "HA3", "HA5", "HA7"),
    "Merton": ("SW19", "SW20", "CR4", "SM4"),
    "Sutton": ("SM1", "SM2", "SM3", "SM5"),
    "Kingston upon Thames": ("KT1", "KT2", "KT3", "KT6"),
    "Richmond upon Thames": ("TW1", "TW2", "TW9", "TW10", "SW14"),
    "Bromley": ("BR1", "BR2", "BR3", "BR6", "SE20"),
    "Bexley": ("DA5", "DA6", "DA7", "DA14", "DA15"),
    "Havering": ("RM1", "RM2", "RM3", "RM7", "RM11"),
    "Barking and Dagenham": ("IG11", "RM8", "RM9", "RM10"),
    "City of London": ("EC2", "EC3", "EC4"),
}
assert set(POSTCODE_DISTRICTS) == set(BOROUGH_ORDER)

#: Letters allowed in the inward part of a postcode (Royal Mail omits C, I, K, M, O, V).
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

STREET_SUFFIXES: tuple[str, ...] = (
    "Road", "Street", "Avenue", "Lane", "Close", "Gardens", "Grove", "Place", "Terrace",
    "Way", "Crescent", "Drive", "Square", "Mews", "Court",
)

#: How some councils' systems shorten street types (ingest expands them back).
STREET_ABBREVIATIONS: dict[str, str] = {"Road": "Rd", "Street": "St", "Avenue": "Ave", "Lane": "Ln",
                                        "Gardens": "Gdns", "Terrace": "Terr", "Crescent": "Cres",
                                        "Drive": "Dr", "Place": "Pl", "Square": "Sq", "Court": "Ct"}
