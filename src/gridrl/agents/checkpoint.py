"""The checkpoint format of a training run, read by the trainer to resume and by the evaluation
to load a trained policy (hence here, in `agents/`, not in `train/`).

    RUN_DIR/checkpoints/<step>/state/      the state's arrays: orbax (tensorstore), never pickle
    RUN_DIR/checkpoints/<step>/meta.json   the format, the step, a manifest of the leaves, and
                                           the caller's dict (config, case, grid fingerprint, ...)

    save(run_dir, 1000, state, {"config": config, "case": "ieee118"})
    state, meta = restore(run_dir, target=state, expected={"config": config})

A checkpoint is written into a hidden sibling folder and renamed to `<step>` once complete, so
`<step>/` is either a whole checkpoint or absent; hidden folders (left by a killed save) are
ignored. The state is stored flat, one numpy array per leaf, named by position: the structure
comes from the caller's `target` on restore, and the manifest in meta.json (each leaf's path,
shape, dtype and checksum) lets a mismatch be named by its leaf instead of failing deep inside
orbax, and catches corrupted data that would otherwise restore silently. Storing host arrays
without their sharding also lets a checkpoint trained on a GPU be read on a CPU-only machine.
Typed PRNG keys (`jax.random.key`) are stored as their `key_data` and wrapped again on restore.

One process writes a run's checkpoints (multi-host training saves from process 0).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gridrl.io import fsync_dir, write_json

__all__ = [
    "FORMAT",
    "CheckpointError",
    "check_meta",
    "latest",
    "read_meta",
    "resolve",
    "restore",
    "save",
]

FORMAT = "gridrl-checkpoint/1"
CHECKPOINTS = "checkpoints"
STATE = "state"
META = "meta.json"
RESERVED = ("format", "step", "leaves")  # meta.json keys the caller's dict may not use

StrPath = str | os.PathLike[str]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match; the message names the file or
    folder and the mismatch."""


# ---- leaves --------------------------------------------------------------------------------------


def _is_key(leaf: Any) -> bool:
    """Whether `leaf` is a typed PRNG key array (or its ShapeDtypeStruct)."""
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _leaf_name(index: int) -> str:
    """The orbax item name of the leaf at `index`: positions, not paths, so that no character
    of a pytree path has to survive orbax's and tensorstore's naming rules."""
    return f"leaf_{index:05d}"


def _checksum(data: np.ndarray) -> int:
    """CRC-32 of the array's bytes: a corrupted chunk can decompress without an error."""
    return zlib.crc32(np.ascontiguousarray(data).reshape(-1).view(np.uint8))


def _to_host(path: str, leaf: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """One leaf as the numpy array that is stored, and its manifest entry."""
    if _is_key(leaf):
        data = np.asarray(jax.device_get(jax.random.key_data(leaf)))
        entry = {"path": path, "shape": list(leaf.shape), "dtype": str(leaf.dtype)}
        entry["key_impl"] = str(jax.random.key_impl(leaf))
    else:
        data = np.asarray(jax.device_get(leaf))
        if data.dtype.kind in "OSU":  # objects and strings: not arrays of numbers
            raise ValueError(f"state{path}: a {type(leaf).__name__} is not an array of numbers")
        entry = {"path": path, "shape": list(data.shape), "dtype": data.dtype.name}
    entry["crc32"] = _checksum(data)
    return data, entry


def _spec(leaf: Any) -> tuple[tuple[int, ...], str]:
    """The (shape, dtype name) a target leaf asks for, named as `_to_host` names them."""
    if _is_key(leaf):
        return tuple(leaf.shape), str(leaf.dtype)
    if isinstance(leaf, jax.Array | jax.ShapeDtypeStruct | np.ndarray | np.generic):
        return tuple(leaf.shape), np.dtype(leaf.dtype).name
    data = np.asarray(leaf)  # a Python scalar: what saving it would have stored
    return data.shape, data.dtype.name


def _fits(stored: str, leaf: Any, dtype: str) -> bool:
    """Whether a leaf stored as `stored` restores into a target leaf of `dtype`: the same
    dtype, or the same kind for a weakly typed target (the abstract value of a Python scalar,
    as jax.eval_shape gives it: float32 under jax's default precision, stored as float64)."""
    if stored == dtype:
        return True
    if not getattr(leaf, "weak_type", False):
        return False
    try:
        return jnp.dtype(stored).kind == jnp.dtype(dtype).kind
    except TypeError:  # a key's dtype ("key<fry>") is no numpy dtype
        return False


def _stored_spec(leaf: Any, entry: Mapping[str, Any]) -> jax.ShapeDtypeStruct:
    """The shape and dtype of the array stored for a leaf (a key's data for a key)."""
    if _is_key(leaf):
        return jax.eval_shape(jax.random.key_data, leaf)
    return jax.ShapeDtypeStruct(tuple(entry["shape"]), jnp.dtype(entry["dtype"]))


def _empty(leaf: Any, entry: Mapping[str, Any]) -> np.ndarray:
    """The (not stored) data of an empty leaf: a key's data has a trailing axis of its own."""
    spec = _stored_spec(leaf, entry)
    return np.zeros(spec.shape, spec.dtype)


def _rebuild(data: np.ndarray, leaf: Any, entry: Mapping[str, Any]) -> Any:
    """The restored array in the target leaf's kind: a jax array on the target's sharding, a
    numpy array, or a Python scalar."""
    value: Any = data
    if entry.get("key_impl"):
        value = jax.random.wrap_key_data(data, impl=entry["key_impl"])
    elif isinstance(leaf, jax.Array | jax.ShapeDtypeStruct):
        value = data.astype(leaf.dtype, copy=False)  # a weakly typed target's own precision
    if isinstance(leaf, jax.Array):
        # committed to its sharding only where the target is: jit's cache key includes it, so a
        # restored state must hit the same compiled function as the state it replaces
        return jax.device_put(value, leaf.sharding) if leaf.committed else jnp.asarray(value)
    if isinstance(leaf, jax.ShapeDtypeStruct):
        sharding = getattr(leaf, "sharding", None)
        return jax.device_put(value, sharding) if sharding is not None else jnp.asarray(value)
    if isinstance(leaf, bool | int | float | complex):
        return data.item()
    return data


# ---- folders -------------------------------------------------------------------------------------


def _is_step_name(name: str) -> bool:
    return name.isascii() and name.isdigit()


def _is_complete(folder: Path) -> bool:
    return (folder / META).is_file() and (folder / STATE).is_dir()


def _steps(root: Path) -> dict[int, Path]:
    """The complete checkpoints in a `checkpoints/` folder by step (hidden folders ignored)."""
    if not root.is_dir():
        return {}
    return {
        int(entry.name): entry
        for entry in root.iterdir()
        if _is_step_name(entry.name) and entry.is_dir() and _is_complete(entry)
    }


def latest(run_dir: StrPath) -> Path | None:
    """The newest complete checkpoint of a run folder, or None if it has none."""
    steps = _steps(Path(run_dir) / CHECKPOINTS)
    return steps[max(steps)] if steps else None


def resolve(path: StrPath) -> Path:
    """The checkpoint folder that `path` names: a checkpoint (`RUN_DIR/checkpoints/N`) itself,
    or the newest complete one of a run folder (or of its `checkpoints/` folder)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint or run folder")
    if (path / META).exists() or (_is_step_name(path.name) and path.parent.name == CHECKPOINTS):
        if not _is_complete(path):
            raise CheckpointError(
                f"{path}: an incomplete checkpoint (it needs {META} and {STATE}/)"
            )
        return path
    root = path if path.name == CHECKPOINTS else path / CHECKPOINTS
    steps = _steps(root)
    if not steps:
        raise CheckpointError(f"{path}: no complete checkpoint in {root}")
    return steps[max(steps)]


# ---- save ----------------------------------------------------------------------------------------


def _orbax() -> Any:
    """orbax.checkpoint, imported on first use: it takes a second to import, and reading a
    checkpoint's meta or finding the latest one does not need it."""
    import orbax.checkpoint as ocp

    return ocp


def _checkpointer() -> Any:
    """A synchronous orbax checkpointer (StandardCheckpointer saves in a background thread),
    acting for this process alone: in a multi-host run process 0 saves without the others (it
    holds the whole state), and each process restores without waiting for the rest."""
    ocp = _orbax()
    alone = ocp.options.MultiprocessingOptions(
        primary_host=jax.process_index(), active_processes={jax.process_index()}
    )
    return ocp.Checkpointer(ocp.StandardCheckpointHandler(), multiprocessing_options=alone)


def _hide(folder: Path) -> Path:
    """Rename a checkpoint folder to a hidden name (atomic), so that deleting it, even cut
    short, never leaves a half-deleted folder that looks like a checkpoint."""
    hidden = folder.with_name(f".old-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.replace(folder, hidden)
    return hidden


def save(run_dir: StrPath, step: int, state: Any, meta: Mapping[str, Any], keep: int = 3) -> Path:
    """Save `state` (a pytree of jax or numpy arrays, Python scalars, typed PRNG keys) as the
    checkpoint of `step` with `meta` (a JSON-able dict) in its meta.json; replace an existing
    checkpoint of that step; then delete all but the newest `keep`. Returns its folder."""
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"the checkpoint step must be an integer >= 0, not {step!r}")
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    clash = [key for key in RESERVED if key in meta]
    if clash:
        raise ValueError(f"the checkpoint meta may not set {', '.join(clash)} (set by save)")
    step = int(step)
    leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    item, manifest = {}, []
    for index, (path, leaf) in enumerate(leaves):
        data, entry = _to_host(jax.tree_util.keystr(path), leaf)
        if data.size:  # orbax refuses empty arrays; the manifest alone rebuilds them
            item[_leaf_name(index)] = data
        manifest.append(entry)
    document = {"format": FORMAT, "step": step, **meta, "leaves": manifest}

    root = Path(run_dir).resolve() / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / str(step)
    staging = root / f".tmp-{step}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)  # a save of ours that died before this one
    staging.mkdir()
    try:
        checkpointer = _checkpointer()
        try:
            checkpointer.save(staging / STATE, args=_orbax().args.StandardSave(item))
        finally:
            checkpointer.close()
        write_json(staging / META, document)  # last: a folder with meta.json is complete
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Replacing a checkpoint of the same step takes two renames; only between them is the step
    # absent (its old and new copies both whole in hidden folders), never half-written.
    previous = _hide(final) if final.exists() else None
    os.replace(staging, final)
    fsync_dir(root)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    _prune(root, keep, step)
    return final


def _prune(root: Path, keep: int, saved: int) -> None:
    """Keep the newest `keep` checkpoints, and always the one just saved (which is not the
    newest when a run resumed from an earlier checkpoint than its last)."""
    steps = sorted(_steps(root), reverse=True)
    for step in steps[keep:]:
        if step != saved:
            shutil.rmtree(_hide(root / str(step)), ignore_errors=True)


# ---- read ----------------------------------------------------------------------------------------


def read_meta(path: StrPath) -> dict[str, Any]:
    """The meta.json of the checkpoint `path` names (see `resolve`), checked: its format, step
    and leaf manifest, and the caller's keys."""
    file = resolve(path) / META
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{file}: cannot be read ({error})") from None
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{file}: not a checkpoint's meta (a JSON object)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{file}: checkpoint format {meta.get('format')!r}, this gridrl reads {FORMAT!r}"
        )
    leaves = meta.get("leaves")
    if not isinstance(meta.get("step"), int) or not isinstance(leaves, list):
        raise CheckpointError(f"{file}: no step or no leaf manifest")
    for number, entry in enumerate(leaves):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("shape"), list)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("crc32"), int)
        ):
            raise CheckpointError(f"{file}: leaf {number} of the manifest is malformed")
    return meta


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_difference(found: Any, wanted: Any, name: str) -> str | None:
    """The first place where two JSON values differ, as 'dotted.key: checkpoint X, expected
    Y', or None. Dict keys in sorted order, so the message is the same on every run."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        for key in sorted(found.keys() | wanted.keys()):
            inner = f"{name}.{key}" if name else key
            if key not in found:
                return f"{inner}: checkpoint has none, expected {_show(wanted[key])}"
            if key not in wanted:
                return f"{inner}: checkpoint {_show(found[key])}, expected none"
            difference = _first_difference(found[key], wanted[key], inner)
            if difference:
                return difference
        return None
    if isinstance(found, list) and isinstance(wanted, list) and len(found) == len(wanted):
        for index, (a, b) in enumerate(zip(found, wanted, strict=True)):
            difference = _first_difference(a, b, f"{name}[{index}]")
            if difference:
                return difference
        return None
    same_kind = isinstance(found, bool) == isinstance(wanted, bool)  # True == 1 in Python
    if same_kind and found == wanted:
        return None
    return f"{name}: checkpoint {_show(found)}, expected {_show(wanted)}"


def _check_expected(meta: Mapping[str, Any], expected: Mapping[str, Any], file: Path) -> None:
    """Each key of `expected` must equal the checkpoint's, compared as JSON (tuples as lists)."""
    wanted = json.loads(json.dumps(dict(expected)))
    for key in wanted:
        if key not in meta:
            raise CheckpointError(
                f"{file}: {key}: checkpoint has none, expected {_show(wanted[key])}"
            )
        difference = _first_difference(meta[key], wanted[key], key)
        if difference:
            raise CheckpointError(f"{file}: {difference}")


def check_meta(path: StrPath, expected: Mapping[str, Any]) -> dict[str, Any]:
    """The meta of the checkpoint `path` names, if each key of `expected` equals its own (before
    any costly work: building the target to restore into)."""
    folder = resolve(path)
    meta = read_meta(folder)
    _check_expected(meta, expected, folder / META)
    return meta


def _check_leaves(
    manifest: list[dict[str, Any]], target: list[tuple[str, Any]], file: Path
) -> None:
    """The target's leaves must be the checkpoint's: same paths in order, shapes and dtypes."""
    stored = [entry["path"] for entry in manifest]
    wanted = [path for path, _ in target]
    if stored != wanted:
        missing = [path for path in wanted if path not in stored]
        extra = [path for path in stored if path not in wanted]
        if missing:
            problem = f"state{missing[0]} is in the target but not in the checkpoint"
        elif extra:
            problem = f"state{extra[0]} is in the checkpoint but not in the target"
        else:
            problem = "the leaves are in another order (another pytree structure)"
        raise CheckpointError(
            f"{file}: {problem} ({len(stored)} leaves stored, {len(wanted)} wanted)"
        )
    for entry, (path, leaf) in zip(manifest, target, strict=True):
        shape, dtype = _spec(leaf)
        if tuple(entry["shape"]) != shape:
            raise CheckpointError(
                f"{file}: state{path}: checkpoint shape {tuple(entry['shape'])}, expected {shape}"
            )
        if not _fits(entry["dtype"], leaf, dtype):
            raise CheckpointError(
                f"{file}: state{path}: checkpoint dtype {entry['dtype']}, expected {dtype}"
            )


def _reason(error: BaseException) -> str:
    """An orbax or tensorstore error in one short line: tensorstore appends its whole JSON
    spec to every message."""
    text = str(error).splitlines()[0] if str(error) else ""
    text = text.split(" [tensorstore_spec=")[0]
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def restore(
    path: StrPath, target: Any, expected: Mapping[str, Any] | None = None, *, subtree: bool = False
) -> tuple[Any, dict[str, Any]]:
    """The state and meta of the checkpoint `path` names (see `resolve`). `target` is a pytree
    of arrays or jax.ShapeDtypeStruct with the structure, shapes and dtypes the state must have;
    each leaf comes back in its target's kind (a jax array on the target's sharding, a numpy
    array, a Python scalar). With `subtree`, the target names only some of the stored leaves
    (by their paths: a dict holding some of the saved dict's keys), and only those are read.
    Each key of `expected` must equal the meta's. Writes nothing."""
    folder = resolve(path)
    meta = read_meta(folder)
    file = folder / META
    if expected:
        _check_expected(meta, expected, file)
    flat, treedef = jax.tree_util.tree_flatten_with_path(target)
    leaves = [(jax.tree_util.keystr(leaf_path), leaf) for leaf_path, leaf in flat]
    manifest = list(enumerate(meta["leaves"]))
    if subtree:
        wanted = {leaf_path for leaf_path, _ in leaves}
        manifest = [(i, entry) for i, entry in manifest if entry["path"] in wanted]
    _check_leaves([entry for _, entry in manifest], leaves, file)

    abstract = {
        _leaf_name(i): _stored_spec(leaf, entry)
        for (i, entry), (_, leaf) in zip(manifest, leaves, strict=True)
        if math.prod(entry["shape"])  # empty arrays are not stored
    }
    data_folder = folder / STATE
    ocp = _orbax()
    checkpointer = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) if subtree else _checkpointer()
    if subtree:  # the standard handler restores whole trees only
        args = ocp.args.PyTreeRestore(
            item=abstract,
            restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
            partial_restore=True,
        )
    else:
        args = ocp.args.StandardRestore(abstract)
    try:
        stored = checkpointer.restore(data_folder.absolute(), args=args)
    except Exception as error:  # orbax and tensorstore raise many kinds (ValueError, OSError...)
        reason = _reason(error)
        raise CheckpointError(
            f"{data_folder}: the checkpoint data cannot be read ({reason})"
        ) from None
    finally:
        checkpointer.close()

    restored = []
    for (i, entry), (leaf_path, leaf) in zip(manifest, leaves, strict=True):
        if _leaf_name(i) not in abstract:
            restored.append(_rebuild(_empty(leaf, entry), leaf, entry))
            continue
        data = np.asarray(stored[_leaf_name(i)])
        if data.shape != abstract[_leaf_name(i)].shape or _checksum(data) != entry["crc32"]:
            raise CheckpointError(
                f"{data_folder}: the data of state{leaf_path} is corrupted (checksum mismatch)"
            )
        restored.append(_rebuild(data, leaf, entry))
    return jax.tree_util.tree_unflatten(treedef, restored), meta
