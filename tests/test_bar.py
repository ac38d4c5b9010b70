"""gridrl.evaluate.bar: the lexicographic comparison and the bar's checks on small documents."""

import pytest

from gridrl.evaluate.bar import BarError, bar_checks, better


def result(ens=0.0, overloads=0.0, cost=100.0, survival=1.0):
    return {
        "energy_not_served_mwh": ens,
        "overload_steps": overloads,
        "operating_cost_per_hour": cost,
        "survival_rate": survival,
    }


def document(seed=0, **scenarios):
    return {"seed": seed, "episodes": 4, "physics": "dc", "episode_steps": 288,
            "case": "ieee118", "scenarios": scenarios}  # fmt: skip


def test_better_compares_ens_then_overloads_then_cost():
    assert better(result(ens=1.0, cost=1e9), result(ens=2.0, cost=1.0))
    assert not better(result(ens=2.0), result(ens=1.0, overloads=50))
    assert better(result(overloads=1, cost=500), result(overloads=2, cost=100))
    assert better(result(cost=99), result(cost=100))
    assert not better(result(), result())  # a tie is not better
    assert not better(result(cost=100 * (1 + 1e-12)), result(cost=100))  # round-off ties


def baselines(**sced_normal):
    heuristic = document(normal=result(cost=130), cascading_failure=result(ens=900, survival=0.7))
    sced = document(
        normal=result(**({"cost": 100} | sced_normal)),
        cascading_failure=result(ens=600, survival=0.8),
    )
    return {"sced": sced, "do_nothing": heuristic, "proportional": heuristic,
            "emergency": heuristic}  # fmt: skip


def failures(candidate, base):
    return [(c.scenario, c.name) for c in bar_checks(candidate, base) if not c.passed]


def test_a_candidate_that_clears_the_bar():
    candidate = document(normal=result(cost=109), cascading_failure=result(ens=890, survival=0.8))
    assert failures(candidate, baselines()) == []


def test_each_failure_is_named():
    candidate = document(
        normal=result(cost=111, overloads=0.5), cascading_failure=result(ens=950, survival=0.75)
    )
    assert set(failures(candidate, baselines())) == {
        ("normal", "cost within 10% of SCED"),
        ("normal", "no overload, no energy not served"),
        # an overload loses to heuristics that had none, whatever the cost
        ("normal", "beats do_nothing"),
        ("normal", "beats proportional"),
        ("normal", "beats emergency"),
        ("cascading_failure", "beats do_nothing"),
        ("cascading_failure", "beats proportional"),
        ("cascading_failure", "beats emergency"),
        ("cascading_failure", "survival >= SCED's"),
        ("cascading_failure", "ENS <= 1.5 x SCED's"),
    }


def test_documents_of_other_episodes_are_refused():
    candidate = document(seed=3, normal=result())
    with pytest.raises(BarError, match="seed 3 against 0"):
        bar_checks(candidate, baselines())
    base = baselines()
    del base["emergency"]
    with pytest.raises(BarError, match="needs the evaluations of emergency"):
        bar_checks(document(normal=result()), base)
