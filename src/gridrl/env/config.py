"""Every number that shapes the environment, in one place: time, protection, rewards, scenarios.

These are static (hashable) settings: they fix shapes and control flow, so a change recompiles.
Their meaning and defaults are documented in docs/env.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

STEP_MINUTES = 5
STEPS_PER_DAY = 24 * 60 // STEP_MINUTES


@dataclass(frozen=True)
class Protection:
    """Thermal protection and reconnection."""

    trip_after_steps: int = 3  # consecutive steps above 100 % of the rating before a trip
    hard_limit: float = 1.5  # loading (of the rating) that trips a branch at once
    reconnect_after_steps: int = 12  # a tripped branch recloses after this cooldown (1 h)
    max_cascade_rounds: int = 6  # power flows re-solved within one step while new trips occur


@dataclass(frozen=True)
class RewardWeights:
    """The layered reward: safety 50 %, cost 30 %, uptime 20 %, plus penalties for hard events.

    Each term is normalised so that a normal step scores of order 1 (docs/env.md).
    """

    safety: float = 0.5
    cost: float = 0.3
    uptime: float = 0.2
    # inside safety: overload severity, voltage violations (AC), energy not served, trips
    overload: float = 1.0
    voltage: float = 1.0
    energy_not_served: float = 1.0
    trip: float = 1.0
    # inside cost: generation cost, losses (AC), load shed at VOLL, curtailment
    cost_scale_per_hour: float = 100_000.0  # $/h that scores -1 (the 118-bus grid costs ~1e5 $/h)
    value_of_lost_load: float = 10_000.0  # $/MWh
    curtailment_price: float = 50.0  # $/MWh of renewable energy spilled
    # inside uptime: reserve margin and N-1 security
    reserve_target: float = 0.10  # spinning reserve sought, share of load
    n1: float = 1.0
    # penalties for hard violations (added to every agent's reward)
    trip_penalty: float = 5.0  # per tripped branch
    blackout_penalty: float = 100.0  # on termination by blackout or collapse


@dataclass(frozen=True)
class Scenario:
    """What kind of day an episode is, and what goes wrong in it."""

    name: str = "normal"
    days: Literal["all", "peak", "variable", "winter_peak"] = "all"
    load_scale: float = 1.0  # multiplies the profile load
    renewable_scale: float = 1.0  # multiplies wind and solar availability
    noise_scale: float = 1.0  # multiplies the AR(1) noise of load and renewables
    # random outages during the episode: how many, and within which steps
    branch_outages: tuple[int, int] = (0, 0)  # inclusive range of random branch outages
    gen_outages: tuple[int, int] = (0, 0)  # inclusive range of random unit outages
    # where random branch outages strike: any non-islanding branch, or the screened critical
    # ones (the N-1 indicator's contingencies: the outages that load other branches the most)
    outage_pool: Literal["any", "critical"] = "any"
    outage_window: tuple[float, float] = (0.1, 0.9)  # share of the episode when they may start
    outage_duration_steps: tuple[int, int] = (36, 144)  # repair time range (3 h to 12 h)
    # emergencies: lose the largest unit and a corridor at a random moment
    lose_largest_unit: bool = False
    corridor_outage: int = 0  # branches of the most loaded corridor lost together
    # stressed start: branches already out and branches near their limit at reset
    initial_branch_outages: int = 0  # critical branches out from the start (by base LODF rank)
    initial_overload_counters: int = 0  # most loaded branches start with a counter at limit - 1
    maintenance: int = 0  # planned branch outages (known to the agents through the observation)


@dataclass(frozen=True)
class EnvConfig:
    """Static configuration of a grid-operation environment."""

    episode_steps: int = STEPS_PER_DAY
    physics: Literal["dc", "ac"] = "dc"
    blackout_share: float = 0.3  # lost load (share of demand) that ends the episode
    # branches out at once the solvers follow exactly (rank-K updates); beyond, the episode is cut
    # (truncated, info["outage_limit"]), not declared a blackout
    max_outages: int = 6
    n1_contingencies: int = 32  # screened single-branch outages for the N-1 indicator
    forecast_steps: tuple[int, ...] = (12, 48, 144)  # strategic agent's horizons (1 h, 4 h, 12 h)
    max_shed_share: float = 0.2  # per step, of a bus's load an agent can shed at most
    protection: Protection = field(default_factory=Protection)
    rewards: RewardWeights = field(default_factory=RewardWeights)
    scenario: Scenario = field(default_factory=Scenario)
    seed: int = 0  # fixes the per-bus load diversity of this environment

    def replace(self, **changes) -> EnvConfig:
        """A copy with `changes`; nested fields accept dicts (`protection={"hard_limit": 1.3}`)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown environment options {unknown}; known: {sorted(known)}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in changes.items():
            current = values[name]
            if isinstance(value, dict) and hasattr(current, "__dataclass_fields__"):
                value = _replace_nested(name, current, value)
            values[name] = value
        config = EnvConfig(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Reject settings that cannot run, naming the field."""
        checks = [
            (self.episode_steps >= 1, "episode_steps must be >= 1"),
            (self.physics in ("dc", "ac"), f"physics must be 'dc' or 'ac', got {self.physics!r}"),
            (0.0 < self.blackout_share <= 1.0, "blackout_share must be in (0, 1]"),
            (self.max_outages >= 1, "max_outages must be >= 1"),
            (self.n1_contingencies >= 1, "n1_contingencies must be >= 1"),
            (all(h >= 1 for h in self.forecast_steps), "forecast_steps must be >= 1"),
            (0.0 <= self.max_shed_share <= 1.0, "max_shed_share must be in [0, 1]"),
            (self.protection.trip_after_steps >= 1, "protection.trip_after_steps must be >= 1"),
            (self.protection.hard_limit > 1.0, "protection.hard_limit must be > 1"),
            (self.protection.reconnect_after_steps >= 1, "protection.reconnect_after_steps >= 1"),
            (self.protection.max_cascade_rounds >= 1, "protection.max_cascade_rounds >= 1"),
            (self.scenario.load_scale > 0, "scenario.load_scale must be > 0"),
            (
                self.scenario.outage_pool in ("any", "critical"),
                "scenario.outage_pool must be 'any' or 'critical'",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"EnvConfig: {message}")


def _replace_nested(name: str, current, changes: dict):
    known = {f.name for f in fields(current)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown {name} options {unknown}; known: {sorted(known)}")
    values = {f.name: getattr(current, f.name) for f in fields(current)}
    values.update(changes)
    return type(current)(**values)
