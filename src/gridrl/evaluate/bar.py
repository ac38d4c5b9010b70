"""The bar a trained operator must clear (docs/results.md), read off evaluation documents.

    checks = bar_checks(candidate, {"sced": sced, "do_nothing": dn, ...})

Every document is `gridrl evaluate`'s JSON of one policy on the same episodes (same seed, episode
count, physics). The bar, per scenario:

1. better than every heuristic, compared in order: less energy not served; where equal, fewer
   overload branch-steps; where equal, a lower operating cost;
2. on `normal`: operating cost within `COST_GAP` of SCED's, no overload, no energy not served;
3. on the emergencies (`EMERGENCIES`): survival rate at least SCED's, energy not served at most
   `ENS_FACTOR` x SCED's.

"Equal" means equal within `TOLERANCE` (relative), so that round-off never decides a comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gridrl.agents.heuristics import HEURISTICS

COST_GAP = 0.10
ENS_FACTOR = 1.5
EMERGENCIES = ("equipment_failure", "cascading_failure", "emergency_response")
TOLERANCE = 1e-9
ORDER = ("energy_not_served_mwh", "overload_steps", "operating_cost_per_hour")


class BarError(ValueError):
    """Documents that cannot be compared (the message says why)."""


@dataclass(frozen=True)
class Check:
    scenario: str
    name: str  # what is checked, in words
    passed: bool
    detail: str  # the numbers behind it


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


def better(candidate: Mapping, other: Mapping) -> bool:
    """`candidate` beats `other` (one scenario's results): less ENS, then fewer overload
    branch-steps, then a lower operating cost."""
    for key in ORDER:
        a, b = float(candidate[key]), float(other[key])
        if not _same(a, b):
            return a < b
    return False


def _check_comparable(documents: Mapping[str, Mapping]) -> None:
    keys = ("seed", "episodes", "physics", "episode_steps", "case")
    first_name, first = next(iter(documents.items()))
    for name, document in documents.items():
        for key in keys:
            if document.get(key) != first.get(key):
                raise BarError(
                    f"{first_name} and {name} were evaluated differently: "
                    f"{key} {first.get(key)!r} against {document.get(key)!r}"
                )


def bar_checks(candidate: Mapping, baselines: Mapping[str, Mapping]) -> list[Check]:
    """The bar's checks of `candidate` against `baselines` (name -> document; SCED and every
    heuristic), on the scenarios of the candidate's document."""
    missing = [n for n in ("sced", *HEURISTICS) if n not in baselines]
    if missing:
        raise BarError(f"the bar needs the evaluations of {', '.join(missing)}")
    _check_comparable({"candidate": candidate, **baselines})
    checks = []
    for scenario, result in candidate["scenarios"].items():
        others = {n: d["scenarios"].get(scenario) for n, d in baselines.items()}
        absent = [n for n, r in others.items() if r is None]
        if absent:
            raise BarError(f"{scenario}: no evaluation of {', '.join(absent)}")
        for name in HEURISTICS:
            theirs = others[name]
            checks.append(
                Check(
                    scenario,
                    f"beats {name}",
                    better(result, theirs),
                    " / ".join(f"{result[k]:,.1f} vs {theirs[k]:,.1f}" for k in ORDER),
                )
            )
        sced = others["sced"]
        if scenario == "normal":
            gap = float(result["operating_cost_per_hour"]) / float(sced["operating_cost_per_hour"])
            checks.append(
                Check(
                    scenario,
                    f"cost within {COST_GAP:.0%} of SCED",
                    gap - 1 <= COST_GAP,
                    f"{gap - 1:+.1%}",
                )
            )
            clean = float(result["overload_steps"]) == 0 and result["energy_not_served_mwh"] == 0
            checks.append(
                Check(
                    scenario,
                    "no overload, no energy not served",
                    clean,
                    f"{result['overload_steps']:.2f} branch-steps, "
                    f"{result['energy_not_served_mwh']:.2f} MWh",
                )
            )
        if scenario in EMERGENCIES:
            survival, sced_survival = float(result["survival_rate"]), float(sced["survival_rate"])
            checks.append(
                Check(
                    scenario,
                    "survival >= SCED's",
                    survival >= sced_survival - TOLERANCE,
                    f"{survival:.1%} vs {sced_survival:.1%}",
                )
            )
            ens, sced_ens = (float(d["energy_not_served_mwh"]) for d in (result, sced))
            checks.append(
                Check(
                    scenario,
                    f"ENS <= {ENS_FACTOR} x SCED's",
                    ens <= ENS_FACTOR * sced_ens + TOLERANCE,
                    f"{ens:,.1f} vs {sced_ens:,.1f} MWh",
                )
            )
    return checks
