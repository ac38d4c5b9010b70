"""The learner: hierarchical multi-agent PPO over the grid environment (docs/training.md)."""

from gridrl.train.config import PRESETS, ConfigError, GridRLConfig, preset
from gridrl.train.ppo import Trainer, TrainState, make_train, trainer_for
from gridrl.train.run import RunError, train_run

__all__ = [
    "PRESETS",
    "ConfigError",
    "GridRLConfig",
    "RunError",
    "TrainState",
    "Trainer",
    "make_train",
    "preset",
    "train_run",
    "trainer_for",
]
