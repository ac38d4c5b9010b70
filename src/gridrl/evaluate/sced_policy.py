"""SCED as a policy: the operator's security-constrained economic dispatch, solved every step.

Before each step, for each episode of the batch, it solves `gridrl.opf.sced.Sced` for the next
step's expected conditions, from the units' present output (ramp limits) with the present
topology, and turns the dispatch into the agents' actions (`gridrl.agents.encode`). It is not
jittable (HiGHS), so the solves loop in Python; forecasting and encoding are jitted and batched.

The forecast is the operator's 5-minute-ahead view: the day's profile at the next step with
today's deviation persisted (the AR(1) noise times φ), i.e. the environment's own
`exogenous.conditions` without the next step's innovation. Branches out now (`branch_down > 0`)
are out in the solve, units out now (`gen_down > 0`) have no availability. Ratings are scaled by
`rating_margin` (0.97 by default): the environment's balancing spreads the forecast error over
the units' headroom, which moves flows by a few percent; the margin keeps them under 100 %.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gridrl.agents import encode
from gridrl.env import GridEnv, exogenous
from gridrl.env.config import STEP_MINUTES
from gridrl.env.state import EnvParams, EnvState

RATING_MARGIN = 0.97
COST_SEGMENTS = 20  # quadratic costs as 20 linear pieces: an LP, ~6x faster than HiGHS's QP
ROUND_OFF = 1e-6  # curtailment and shedding shares below this are zero


def forecast(env: GridEnv, params: EnvParams, state: EnvState) -> tuple[jax.Array, jax.Array]:
    """(demand [n_bus] MW, availability [n_gen] MW) expected at the next step of one episode."""
    persisted = state.noise * params.sampling.noise.phi
    return exogenous.conditions(params, env.config.scenario, state.day, state.step + 1, persisted)


@partial(jax.jit, static_argnames="env")
def _forecast_batch(env: GridEnv, params: EnvParams, state: EnvState):
    return jax.vmap(lambda s: forecast(env, params, s))(state)


@partial(jax.jit, static_argnames="env")
def _encode_batch(env: GridEnv, params: EnvParams, pg, target, curtail_share, shed_share):
    return jax.vmap(lambda *xs: encode(params, env.config, *xs))(
        pg, target, curtail_share, shed_share
    )


class ScedPolicy:
    """SCED for a batch of `n_episodes` episodes of `env`, one warm-started `Sced` per slot.

    `n1_contingencies`: branches whose single outage the dispatch must withstand (preventive
    N-1, soft); by default the environment's screened contingencies (`layout.contingencies`),
    the ones its N-1 indicator checks. Costs are piecewise linear (`COST_SEGMENTS`; the exact
    cost of the dispatch is what the environment charges).
    """

    def __init__(
        self,
        env: GridEnv,
        n_episodes: int,
        *,
        rating_margin: float = RATING_MARGIN,
        n1_contingencies: Sequence[int] | None = None,
    ):
        from gridrl.opf.sced import Sced  # HiGHS is needed only where SCED runs

        params = env.default_params
        weights = env.config.rewards
        grid = params.grid
        if n1_contingencies is None:
            n1_contingencies = np.asarray(params.layout.contingencies)
        self.solvers = [
            Sced(
                grid,
                value_of_lost_load=weights.value_of_lost_load,
                curtailment_price=weights.curtailment_price,
                step_minutes=float(STEP_MINUTES),
                rating_margin=rating_margin,
                n1_contingencies=tuple(int(k) for k in n1_contingencies),
                cost_segments=COST_SEGMENTS,
            )
            for _ in range(n_episodes)
        ]
        # solves that found no dispatch, by HiGHS status (the units then hold their output)
        self.failures: Counter[str] = Counter()
        self.env = env
        self._branch_status = np.asarray(grid.branch_status) > 0

    def __call__(self, params: EnvParams, state: EnvState, live: np.ndarray) -> dict:
        """Batched actions for `state` ([n_episodes] leading axis); episodes not `live` (already
        terminated) are not solved and hold."""
        demand, available = (np.asarray(x, float) for x in _forecast_batch(self.env, params, state))
        pg = np.asarray(state.pg, float)
        branch_in = self._branch_status & (np.asarray(state.branch_down) == 0)
        available = np.where(np.asarray(state.gen_down) > 0, 0.0, available)
        target, curtail, shed = pg.copy(), np.zeros_like(pg), np.zeros_like(demand)
        for i, solver in enumerate(self.solvers):
            if not live[i]:
                continue
            result = solver.solve(demand[i], available[i], pg_prev=pg[i], line_status=branch_in[i])
            if not result.success:
                self.failures[result.status] += 1
                continue
            target[i] = result.pg
            curtail[i] = _share(result.curtailed, available[i])
            shed[i] = _share(result.shed, demand[i])
        dtype = params.grid.pd.dtype
        inputs = (jnp.asarray(x, dtype) for x in (pg, target, curtail, shed))
        return _encode_batch(self.env, params, *inputs)

    def warn_failures(self, scenario: str) -> None:
        if self.failures:
            statuses = ", ".join(f"{n} x {status!r}" for status, n in self.failures.items())
            warnings.warn(
                f"SCED found no dispatch on {scenario!r} ({statuses}); "
                "the units held their output there",
                stacklevel=2,
            )


@dataclass(frozen=True)
class ScedBaseline:
    """SCED as a `gridrl.agents.HostPolicy`: its stepper is a fresh `ScedPolicy` per batch (so a
    run never depends on the warm starts of another). Frozen: the runner caches its rollouts."""

    name: str = "sced"
    rating_margin: float = RATING_MARGIN
    n1_contingencies: tuple[int, ...] | None = None  # None: the environment's screened ones

    def stepper(self, env: GridEnv, n_episodes: int) -> ScedPolicy:
        return ScedPolicy(
            env,
            n_episodes,
            rating_margin=self.rating_margin,
            n1_contingencies=self.n1_contingencies,
        )


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """part / whole where whole > 0; shares below 1e-6 are the solver's round-off, not intent."""
    share = np.where(whole > 0, part / np.where(whole > 0, whole, 1.0), 0.0)
    return np.where(share > ROUND_OFF, share, 0.0)
