"""The grid-operation environment: multi-agent, functional, pure JAX (docs/env.md)."""

from gridrl.env.config import EnvConfig, Protection, RewardWeights, Scenario
from gridrl.env.core import GridEnv, make
from gridrl.env.params import build_params
from gridrl.env.scenarios import SCENARIOS
from gridrl.env.state import EnvParams, EnvState
from gridrl.env.wrappers import AutoReset

__all__ = [
    "SCENARIOS",
    "AutoReset",
    "EnvConfig",
    "EnvParams",
    "EnvState",
    "GridEnv",
    "Protection",
    "RewardWeights",
    "Scenario",
    "build_params",
    "make",
]
