"""Linking one match type: train its model once, then score any shard of its candidate pairs.

    train(match_type, inputs)                               -> Models   (independent of sharding)
    link(match_type, models, inputs, run_id, shard, shards) -> (flags frame, stats)

The pieces, in flow order: :mod:`matching.inputs` (the two sides and the pool),
:mod:`matching.training` (u, m, λ, the bound and the fit check), :mod:`matching.scoring`
(the flags of a shard) and :mod:`matching.household` (is an address-linked record the
left record's own person?). This module is the one entry point the run and the
evaluation use.
"""

from __future__ import annotations

from matching.inputs import LinkInputs, in_scope, pool_inputs
from matching.scoring import link
from matching.training import DegenerateFit, Models, TrainingContext, load_models, train

__all__ = ["DegenerateFit", "LinkInputs", "Models", "TrainingContext", "in_scope", "link", "load_models",
           "pool_inputs", "train"]
