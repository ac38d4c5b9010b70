"""Data parallelism on JAX's own runtime: one mesh axis, `data`, over the devices of every process.

    initialize(coordinator="10.0.0.1:1234", num_processes=2, process_id=0)  # multi-host only
    mesh = data_mesh(devices=4)          # 4 devices of this process (of each process)
    trainer = Trainer(config, mesh=mesh)

The trainer is one program whatever the mesh: its update runs under `jax.shard_map` over `data`,
each device holding `num_envs / devices` grids (their states, observations, rollouts) and a copy
of the parameters, optimiser and normalisers. The functions here are what makes a device's
share of a reduction the global one: sums (`psum`), means of equal shares (`pmean`), the moments
of a batch spread over the devices (`moments`, `merged`) and the rows of a global array that
belong to this device (`local_rows`: per-grid keys are split for the whole batch, then sliced,
so a grid's randomness does not depend on how many devices there are). On one device every
collective is the identity. Across processes (`jax.distributed`), each process steps the grids
of its own devices; `to_host` gathers a state for process 0 to save.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gridrl.agents.normalize import RunningStats
from gridrl.train.config import ConfigError

AXIS = "data"
REPLICATED = P()
SHARDED = P(AXIS)  # the leading (grid) axis split over the devices

# the environment variables read where the flags are not given (JAX reads the first itself)
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


# --- processes and devices ------------------------------------------------------------------


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Join the processes of a multi-host run (`jax.distributed.initialize`), before any
    computation. The arguments, else $JAX_COORDINATOR_ADDRESS, $JAX_NUM_PROCESSES and
    $JAX_PROCESS_ID; `auto`: JAX's detection of the cluster (SLURM, Cloud TPU, Open MPI,
    Kubernetes). Returns whether a multi-process run was set up (nothing given: one process)."""
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    given = (coordinator, num_processes, process_id)
    if not auto and all(x is None for x in given):
        return False
    if not auto and any(x is None for x in given):
        raise ConfigError(
            "multi-host training needs --coordinator HOST:PORT, --num-processes N and "
            "--process-id I together (or $JAX_COORDINATOR_ADDRESS, $JAX_NUM_PROCESSES, "
            "$JAX_PROCESS_ID), or --distributed to detect the cluster"
        )
    if num_processes is not None and num_processes < 1:
        raise ConfigError(f"--num-processes must be at least 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ConfigError(f"--process-id must be in [0, {num_processes}), got {process_id}")
    if coordinator is not None and ":" not in coordinator:
        raise ConfigError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    jax.distributed.initialize(coordinator, num_processes, process_id)
    return True


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"${name} must be an integer, got {text!r}") from None


def is_main_process() -> bool:
    """Process 0 writes the run's files (config, checkpoints, logs) and evaluates."""
    return jax.process_index() == 0


def data_mesh(devices: int | Sequence[jax.Device] | None = None) -> Mesh:
    """The 1-axis mesh `data`: the given devices, or the first `devices` local devices of every
    process (None: all of them), ordered by process, so each process holds a contiguous block of
    the grids. ConfigError where a process has fewer devices than asked for."""
    if devices is None or isinstance(devices, int):
        available = jax.local_device_count()
        count = available if devices is None else devices
        if count < 1:
            raise ConfigError(f"--devices must be at least 1, got {count}")
        if count > available:
            raise ConfigError(
                f"--devices {count}: this process has {available} "
                f"{jax.default_backend().upper()} device(s)"
            )
        by_process: dict[int, list[jax.Device]] = {}
        for device in jax.devices():
            by_process.setdefault(device.process_index, []).append(device)
        chosen = [
            d for p in sorted(by_process) for d in sorted(by_process[p], key=lambda d: d.id)[:count]
        ]
    else:
        chosen = list(devices)
    return Mesh(np.asarray(chosen), (AXIS,))


def check_divisible(counts: Sequence[int], n_devices: int) -> None:
    """Every scenario's grids split evenly over the devices (each device steps its share of
    each scenario's grids), else a one-line ConfigError."""
    if all(c % n_devices == 0 for c in counts):
        return
    if len(counts) == 1:
        raise ConfigError(
            f"config: num_envs={counts[0]} is not divisible by the {n_devices} devices "
            "(num_envs is the global batch: all devices together)"
        )
    raise ConfigError(
        f"config: the mix splits num_envs={sum(counts)} into {tuple(counts)} grids per "
        f"scenario; each must be divisible by the {n_devices} devices (choose num_envs or "
        "mix_weights accordingly)"
    )


def shardings(mesh: Mesh, specs: Any) -> Any:
    """NamedShardings of a tree of PartitionSpecs (a prefix of the state's tree)."""
    return jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, P))


# --- inside the shard_map ---------------------------------------------------------------------


def local_rows(x: jax.Array, n_devices: int) -> jax.Array:
    """This device's block of the rows of `x` (a global array every device computed alike)."""
    size = x.shape[0] // n_devices
    return jax.lax.dynamic_slice_in_dim(x, jax.lax.axis_index(AXIS) * size, size)


def psum(x: Any) -> Any:
    return jax.lax.psum(x, AXIS)


def pmean(x: Any) -> Any:
    """The mean of equal shares' means: the global mean."""
    return jax.lax.pmean(x, AXIS)


def moments(batch: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array, int]:
    """(mean, variance, samples) over every leading axis of `batch` [..., *shape] and over the
    devices (equal shares); the variance about the global mean (two passes, no cancellation)."""
    flat = batch.reshape(-1, *shape)
    mean = pmean(jnp.mean(flat, axis=0))
    var = pmean(jnp.mean((flat - mean) ** 2, axis=0))
    return mean, var, flat.shape[0] * jax.lax.axis_size(AXIS)


def merged(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """`stats.update(batch)` where `batch` is spread over the devices: Chan et al.'s merge of
    the global batch's moments (what `RunningStats.update` does with one device's batch)."""
    mean, var, n = moments(batch.astype(stats.mean.dtype), stats.mean.shape)
    total = stats.count + n
    delta = mean - stats.mean
    m2 = stats.var * stats.count + var * n + delta**2 * stats.count * n / total
    return RunningStats(stats.mean + delta * n / total, m2 / total, total)


# --- across processes -----------------------------------------------------------------------


def to_host(tree: Any) -> Any:
    """Every leaf readable by this process: the arrays spread over other processes' devices are
    gathered (one program for the whole tree, a collective: every process calls this), replicated
    ones read from a local copy. On one process, the tree as it is."""
    if jax.process_count() == 1:
        return tree
    leaves, structure = jax.tree.flatten(tree)
    spread = [
        i
        for i, x in enumerate(leaves)
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated
    ]
    if spread:
        mesh = leaves[spread[0]].sharding.mesh
        gathered = jax.jit(lambda xs: xs, out_shardings=NamedSharding(mesh, REPLICATED))(
            [leaves[i] for i in spread]
        )
        for i, x in zip(spread, gathered, strict=True):
            leaves[i] = x

    def local(x: Any) -> Any:
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return x
        return x.addressable_data(0)  # a replicated array's copy on this process

    return jax.tree.unflatten(structure, [local(x) for x in leaves])


def to_mesh(tree: Any, target: Any) -> Any:
    """`tree` placed like `target` (a state of the same structure on the mesh): host values or
    one device's arrays (a warm start's agents) become the mesh's global arrays."""

    def place(x: Any, like: Any) -> Any:
        if not isinstance(like, jax.Array):
            return x
        if jax.dtypes.issubdtype(like.dtype, jax.dtypes.prng_key):
            impl = jax.random.key_impl(x)
            data = place(jax.random.key_data(x), jax.random.key_data(like))
            return jax.random.wrap_key_data(data, impl=impl)
        if isinstance(x, jax.Array) and x.sharding == like.sharding:
            return x
        return jax.device_put(np.asarray(x), like.sharding)

    return jax.tree.map(place, tree, target)


def barrier(name: str) -> None:
    """Wait for every process (no-op with one)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
