"""The six scenarios, each hard in its own way (parameters in gridrl.env.config.Scenario)."""

from __future__ import annotations

from gridrl.env.config import Scenario

SCENARIOS: dict[str, Scenario] = {
    # an ordinary day of the year, no equipment lost
    "normal": Scenario(name="normal"),
    # the top-decile load days, 15 % above the profile (a heat wave beyond the year's peak): lines
    # bind and trip, reserves are thin (at 5 % above, do-nothing barely saw an overload)
    "peak_demand": Scenario(name="peak_demand", days="peak", load_scale=1.15),
    # one to three random outages of critical branches (those whose loss loads the others the
    # most) and up to one unit outage during the day
    "equipment_failure": Scenario(
        name="equipment_failure", branch_outages=(1, 3), gen_outages=(0, 1), outage_pool="critical"
    ),
    # the days of largest renewable variability, with three times the forecast-error noise
    "renewable_intermittency": Scenario(
        name="renewable_intermittency", days="variable", noise_scale=3.0, renewable_scale=1.2
    ),
    # a day that starts with the two most critical branches out (largest post-outage loading,
    # base LODF screen): the flows they push onto their neighbours overload them, which trip after
    # `trip_after_steps` and spread the overloads further; islands form and their load is lost.
    # (On peak days, or with three branches out, the reset alone already cascades past
    # max_outages: that measures the solver's limit, not the operator; docs/env.md.)
    "cascading_failure": Scenario(
        name="cascading_failure", initial_branch_outages=2, branch_outages=(0, 1)
    ),
    # the largest unit and a corridor lost at once, at a random moment of a peak day
    "emergency_response": Scenario(
        name="emergency_response", days="peak", lose_largest_unit=True, corridor_outage=2
    ),
}


def scenario(name_or_scenario: str | Scenario) -> Scenario:
    """A preset by name (or a custom Scenario, returned as it is)."""
    if isinstance(name_or_scenario, Scenario):
        return name_or_scenario
    try:
        return SCENARIOS[name_or_scenario]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name_or_scenario!r}; known: {sorted(SCENARIOS)}"
        ) from None
