"""gridrl: agents that operate real transmission grids, with the whole loop in JAX."""

import gymnasium

__version__ = "0.1.0"

# The entry points are strings: the adapters (and JAX) load on the first gymnasium.make.
gymnasium.register(
    id="gridrl/IEEE118-v0",
    entry_point="gridrl.adapters.gymnasium:GridGymEnv",
    vector_entry_point="gridrl.adapters.gymnasium:GridVectorEnv",
)


def make(case="ieee118", scenario="normal", physics="dc", **options):
    """The grid-operation environment (`gridrl.env.make`); imports JAX on first use."""
    from gridrl.env import make as make_env

    return make_env(case, scenario=scenario, physics=physics, **options)
