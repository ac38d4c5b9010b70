"""Test-wide settings: physics and OPF are validated in float64, so x64 is on for the session;
float32 tests cast explicitly with `grid.astype(jnp.float32)`."""

import logging
import warnings
from pathlib import Path

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
