"""Labelled evaluation of record linkage: independent test sets and reference baselines.

``evaluation.perturb`` builds labelled person sets with a noise model written without
reference to the matcher (so figures on them are not closed-world), and
``evaluation.splink_baseline`` scores Splink 5 on the same data in clear text as a
reference point. Only the ``councilmatch evaluate`` commands and the tests import this
package (pyproject.toml, ``[tool.importlinter]``).
"""
