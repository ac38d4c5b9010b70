"""Test-wide settings: physics and OPF are validated in float64, so x64 is on for the session;
float32 tests cast explicitly with `grid.astype(jnp.float32)`.

Compiling the environment's reset or step takes tens of seconds on 2 cores, and a jitted
function compiles again for every new function object, environment object or batch size. So the
`normal` environment of 12-step episodes (the evaluation tests' episodes) is built once for the
session, with its batched reset and step (batch `NormalFns.batch`) and its single-sample step:
every module that steps a plain normal day uses these, and each is compiled once per session."""

import logging
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax
import pytest

jax.config.update("jax_enable_x64", True)
logging.getLogger("pandapower").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module="pandapower")

PGLIB = Path(__file__).resolve().parents[2] / "shared" / "reference" / "pglib"


@pytest.fixture(scope="session")
def pglib_dir() -> Path:
    """The shared PGLib reference folder; tests using it skip where it is absent."""
    if not PGLIB.is_dir():
        pytest.skip(f"PGLib reference cases not found at {PGLIB}")
    return PGLIB


NORMAL_STEPS = 12  # episode length of the shared `normal` environment


class NormalFns(NamedTuple):
    """The shared environment's compiled functions (see the module notes)."""

    reset: Any  # jit(vmap(env.reset, in_axes=(0, None))): (keys [batch], params)
    step: Any  # jit(vmap(env.step, in_axes=(0, 0, 0, None))): (keys, states, actions, params)
    single_step: Any  # jit(env.step): one sample
    batch: int  # the batch size the batched functions are used with (one compilation)


@pytest.fixture(scope="session")
def normal_env():
    """`make("ieee118", scenario="normal", episode_steps=12)`, built once for the session."""
    from gridrl.env import make

    return make("ieee118", scenario="normal", episode_steps=NORMAL_STEPS)


@pytest.fixture(scope="session")
def normal_fns(normal_env) -> NormalFns:
    """Jitted functions of `normal_env`, shared by every module (compiled on first use). Any
    params of the same shapes can be passed (scaled ratings, another Grid of the same case):
    they are arguments, not constants."""
    env = normal_env
    return NormalFns(
        reset=jax.jit(jax.vmap(env.reset, in_axes=(0, None))),
        step=jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None))),
        single_step=jax.jit(env.step),
        batch=4,
    )
