"""Suite-wide test settings.

Test homes are development homes: they opt in to the development key-encryption key
(``keys init --dev-kek``), which production refuses (``anonymise.kek``). The variable is
inherited by the command-line runs the tests start.
"""

from __future__ import annotations

import os

os.environ.setdefault("COUNCILMATCH_DEV_KEK", "1")
os.environ.pop("COUNCILMATCH_PRODUCTION", None)
