"""Agents that operate the grid: rule-based baselines (and, with training, the learned agents).

A policy is a pure function of one grid, `policy(key, obs, state, params) -> actions` (dicts keyed
by agent, as the environment takes them); vmap it over a batch.
"""

from gridrl.agents.actions import encode
from gridrl.agents.heuristics import HEURISTICS, Policy, heuristic

__all__ = ["HEURISTICS", "Policy", "encode", "heuristic"]
