"""Realistic synthetic borough extracts with ground truth (``councilmatch generate``).

    from synthetic import generate
    summary = generate(Home.resolve(dir), boroughs=3, people=5000, seed=1)

See synthetic/generate.py for the steps; truth/ holds records, people, addresses,
scenarios and expected flags (no pipeline stage reads it). ``synthetic.flags`` makes
review-store flags for tests and benchmarks. Only the ``generate`` and ``demo`` commands
and the tests import this package (pyproject.toml, ``[tool.importlinter]``).
"""

from synthetic.generate import DEFAULT_EXTRACT_DATE, GenerateSummary, generate

__all__ = ["DEFAULT_EXTRACT_DATE", "GenerateSummary", "generate"]
