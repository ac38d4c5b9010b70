"""The learner: hierarchical multi-agent PPO over the grid environment (docs/training.md)."""
