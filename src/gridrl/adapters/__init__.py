"""Gymnasium and PettingZoo front ends over the functional JAX environment (docs/adapters.md).

- `gridrl.adapters.gymnasium`: `GridGymEnv` (registered as "gridrl/IEEE118-v0") and
  `GridVectorEnv`, the whole grid seen as one agent;
- `gridrl.adapters.pettingzoo`: `parallel_env(...)`, one PettingZoo agent per gridrl agent.

The submodules are imported on demand so that `import gridrl` stays light.
"""
