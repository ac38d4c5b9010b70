"""gridrl: agents that operate real transmission grids, with the whole loop in JAX."""

import gymnasium

__version__ = "0.1.0"

# The entry points are strings: the adapters (and JAX) load on the first gymnasium.make.
gymnasium.register(
    id="gridrl/IEEE118-v0",
    entry_point="gridrl.adapters.gymnasium:GridGymEnv",
    vector_entry_point="gridrl.adapters.gymnasium:GridVectorEnv",
)
