"""gridrl: agents that operate real transmission grids, with the whole loop in JAX."""

__version__ = "0.1.0"
