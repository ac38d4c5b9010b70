"""One interface for every operator: heuristics, SCED and trained agents (docs/evaluation.md).

A policy has a `name` and is one of two kinds; the evaluation runner dispatches on the kind,
never on the name.

- **`JaxPolicy`**: pure JAX, jitted and vmapped over the episodes. It is split in two halves so
  that one compiled rollout serves every set of weights:

  - `spec`: the static half (`PolicySpec`), what `jax.jit` sees as a static argument. It must be
    hashable and compare equal by value (a frozen dataclass of str, int, float, bool and tuples;
    no arrays), so that two loads of the same architecture share one compilation.
    `spec.act(env)` returns the act function of one grid,

        act_fn(weights, key, obs, state, params) -> {agent: actions}

    pure and jittable: `key` is this grid's policy key for the step (`jax.random` key), `obs`
    the environment's observation dict of one grid, `state` its `EnvState`, `params` the
    `EnvParams`; the result maps every agent of `env.agents` to an array of
    `env.action_space(agent).shape`. `act` is called while tracing, once per compilation.
  - `weights`: the pytree of arrays the act function reads (None for a heuristic; for a trained
    agent its network parameters and observation-normaliser statistics). It is passed to the
    jitted rollout as an argument, shared by every episode (not vmapped), never baked in.

- **`HostPolicy`**: decides on the host (SCED's HiGHS solves), not jittable.
  `stepper(env, n_episodes)` returns a `HostStepper` for one batch of episodes, called every
  step as `stepper(params, state, live) -> actions` with the batch's `EnvState` ([n_episodes]
  leading axis) and `live` (bool [n_episodes], False for episodes already terminated: they may be
  skipped); the actions carry the same leading axis. A host policy is hashable and deterministic
  (it gets no key): the runner reuses its rollout of the same episodes within a process.

**A trained policy** (`gridrl.agents.trained.load_policy(path) -> JaxPolicy`, called by
`gridrl.evaluate.runner.resolve_policy` for an existing path: a training run's folder, meaning its
latest checkpoint, or `RUN_DIR/checkpoints/N`) meets the JaxPolicy contract above, and:

- `name` tells runs and checkpoints apart and contains no "/" (e.g. `"<run folder>@<step>"`):
  it is the evaluation JSON's "policy" and the `{policy}` of `gridrl evaluate --json`;
- `spec` holds the architecture only (network config, agent layout, action mode), so checkpoints
  of one run compare equal; `spec.act(env)` reads every learned number from `weights` (closing
  over a checkpoint's arrays would bake them into the program as constants) and acts with the
  mean action (deterministic) unless it means to sample with `key`; it may raise `ValueError`
  when `env`'s observation or action sizes do not fit the checkpoint;
- a path that is not a loadable checkpoint raises `ValueError` (or `OSError`) with a one-line
  message; the runner reports it as an `EvaluationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from gridrl.env.core import GridEnv
from gridrl.env.state import EnvParams, EnvState

Actions = dict[str, jax.Array]
ActFn = Callable[[Any, jax.Array, dict, EnvState, EnvParams], Actions]

PRETRAINED = "pretrained"  # the agents shipped with the package (gridrl.agents.trained)


@runtime_checkable
class Policy(Protocol):
    """Any operator the evaluation runs: a `JaxPolicy` or a `HostPolicy`."""

    @property
    def name(self) -> str: ...


@runtime_checkable
class PolicySpec(Hashable, Protocol):
    """The static half of a `JaxPolicy`: hashable, equal by value; builds the act function."""

    def act(self, env: GridEnv) -> ActFn: ...


@runtime_checkable
class JaxPolicy(Policy, Protocol):
    """A policy in pure JAX: a static `spec` and its `weights` (a pytree, or None)."""

    @property
    def spec(self) -> PolicySpec: ...

    @property
    def weights(self) -> Any: ...


@runtime_checkable
class HostStepper(Protocol):
    """A host policy acting on one batch of episodes (it may keep state between steps)."""

    def __call__(self, params: EnvParams, state: EnvState, live: np.ndarray) -> Actions: ...

    def warn_failures(self, scenario: str) -> None:
        """Called once after the rollout: warn about steps where it could not decide."""


@runtime_checkable
class HostPolicy(Policy, Protocol):
    """A policy deciding on the host (not jittable), one batch of episodes at a time."""

    def stepper(self, env: GridEnv, n_episodes: int) -> HostStepper: ...
