"""What the store must keep for matching: the minimisation policy the match types imply.

``anonymise.minimise`` generalises every non-identifying field to the precision the match
types' conditions need (``anonymise.minimise.NEEDS``); this reads the home's match types and
hands that policy to the writers of the store (the nightly feed step, re-pseudonymisation).
"""

from __future__ import annotations

from anonymise.minimise import Policy, policy_for
from councilmatch.home import Home
from matching.matchtype import load_matchtypes


def store_policy(home: Home) -> Policy:
    """dataset -> {field: precision} for the home's match types (shipped and the home's own)."""
    return policy_for(load_matchtypes(home))
