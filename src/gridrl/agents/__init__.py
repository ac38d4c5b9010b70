"""Agents that operate the grid: rule-based baselines (and, with training, the learned agents).

Every operator is a `Policy` (gridrl.agents.policy): a `JaxPolicy` (a static `spec` whose
`act(env)` gives the pure act function of one grid, `act_fn(weights, key, obs, state, params) ->
actions`, plus its `weights`) or a `HostPolicy` (SCED: decides on the host). `heuristic(name, env)`
still gives a baseline's bare function of one grid, `act(key, obs, state, params) -> actions`.
"""

from gridrl.agents.actions import encode
from gridrl.agents.heuristics import HEURISTICS, HeuristicPolicy, heuristic
from gridrl.agents.policy import (
    PRETRAINED,
    ActFn,
    HostPolicy,
    HostStepper,
    JaxPolicy,
    Policy,
    PolicySpec,
)

__all__ = [
    "HEURISTICS",
    "PRETRAINED",
    "ActFn",
    "HeuristicPolicy",
    "HostPolicy",
    "HostStepper",
    "JaxPolicy",
    "Policy",
    "PolicySpec",
    "encode",
    "heuristic",
]
