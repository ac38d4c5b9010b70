"""gridrl.agents.checkpoint: exact round trips (typed keys included), keep-K pruning, the newest
complete checkpoint found and half-written ones ignored, and every bad checkpoint a one-line
CheckpointError naming the folder and the mismatch, with nothing written by a restore."""

import errno
import json
import re
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gridrl.agents import checkpoint
from gridrl.agents.checkpoint import CheckpointError, latest, read_meta, resolve, restore, save

META = {"config": {"hidden_size": 64, "lr": 3e-4, "layers": [64, 64]}, "case": "ieee118"}


def _state(seed: int = 0) -> dict:
    """A tiny trainer-like state: float32 params, an optax state (NamedTuples, an empty node),
    counters of several kinds and typed PRNG keys."""
    rng = np.random.default_rng(seed)
    params = {
        "w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
        "b": np.asarray(rng.normal(size=4), np.float32),
    }
    return {
        "params": params,
        "opt": optax.adam(1e-3).init(params),
        "step": 7 + seed,
        "updates": jnp.int32(3),
        "ema": 0.125,
        "key": jax.random.key(seed),
        "env_keys": jax.random.split(jax.random.key(seed + 1), 3),
    }


def _assert_same(restored, original) -> None:
    """Leaf by leaf: the same kind, dtype and exact values (keys compared by their data)."""
    a, tree_a = jax.tree.flatten(restored)
    b, tree_b = jax.tree.flatten(original)
    assert tree_a == tree_b
    for x, y in zip(a, b, strict=True):
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array))
        if isinstance(y, jax.Array) and jnp.issubdtype(y.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _snapshot(root: Path) -> dict:
    """Every file and folder under root with its modification time and bytes: equal
    snapshots mean nothing was written, created or deleted."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _contents(root: Path) -> dict:
    """The files under root and their bytes (a save's staging folder, created and removed,
    changes its parent's modification time and nothing else)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _hidden(run: Path) -> list[str]:
    return [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def _data_files(folder: Path) -> list[Path]:
    """orbax's array data files (tensorstore OCDBT keeps them in folders named d/)."""
    files = [p for p in (folder / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files, f"no orbax data files found under {folder}"
    return files


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """A run folder with checkpoints of steps 1 and 2 (step 2 holds _state(1)), saved once."""
    folder = tmp_path_factory.mktemp("saved") / "run"
    save(folder, 1, _state(0), META)
    save(folder, 2, _state(1), META)
    return folder


@pytest.fixture
def run(saved_run, tmp_path) -> Path:
    """A copy of the saved run for one test to use or damage."""
    return Path(shutil.copytree(saved_run, tmp_path / "run"))


# ---- round trip ----------------------------------------------------------------------------------


def test_round_trip_is_exact(run):
    state, meta = restore(run, _state(5), expected=META)
    _assert_same(state, _state(1))
    assert meta["step"] == 2 and meta["case"] == "ieee118" and meta["config"] == META["config"]
    assert meta["format"] == checkpoint.FORMAT
    # the restored keys are live keys: they draw what the saved ones drew
    assert jax.random.uniform(state["key"]) == jax.random.uniform(_state(1)["key"])


def test_restore_into_an_abstract_target(run):
    """jax.eval_shape's ShapeDtypeStructs (Python scalars weakly typed) as the target."""
    abstract = jax.eval_shape(lambda: _state(0))
    state, _ = restore(run / "checkpoints" / "1", abstract)
    leaves = jax.tree.leaves(state)
    assert all(isinstance(leaf, jax.Array) for leaf in leaves)
    np.testing.assert_array_equal(state["params"]["b"], _state(0)["params"]["b"])
    assert state["step"] == 7 and state["ema"] == 0.125
    assert jnp.issubdtype(state["env_keys"].dtype, jax.dtypes.prng_key)


def test_meta_json_records_the_step_the_callers_dict_and_the_leaves(run):
    meta = json.loads((run / "checkpoints" / "2" / "meta.json").read_text())
    assert meta["step"] == 2 and meta["config"]["hidden_size"] == 64
    paths = [leaf["path"] for leaf in meta["leaves"]]
    assert "['params']['w']" in paths and "['key']" in paths
    assert read_meta(run) == meta


# ---- folders: keep, latest, resolve, half-written saves ----------------------------------------


def test_keep_prunes_all_but_the_newest(tmp_path):
    for step in (10, 20, 30, 40, 50):
        save(tmp_path, step, {"x": np.full(2, step, np.float32)}, {}, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["40", "50"]
    assert latest(tmp_path) == tmp_path / "checkpoints" / "50"
    # a run resumed from an earlier step keeps the checkpoint it has just saved
    save(tmp_path, 45, {"x": np.full(2, 45, np.float32)}, {}, keep=1)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["45", "50"]


def test_saving_a_step_again_replaces_it(run):
    save(run, 2, _state(3), META)
    state, meta = restore(run, _state(0))
    _assert_same(state, _state(3))
    assert meta["step"] == 2
    assert _hidden(run) == []


def test_resolve_and_latest(run, tmp_path_factory):
    newest = run / "checkpoints" / "2"
    assert resolve(run) == newest
    assert resolve(run / "checkpoints") == newest
    assert resolve(run / "checkpoints" / "1") == run / "checkpoints" / "1"
    assert latest(run) == newest
    empty = tmp_path_factory.mktemp("empty")
    assert latest(empty) is None
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(empty))}: no complete checkpoint"):
        resolve(empty)
    with pytest.raises(CheckpointError, match="no such checkpoint or run folder"):
        resolve(empty / "missing")


def test_a_killed_save_is_ignored(run):
    """A save killed before its rename leaves a hidden folder (complete or not): not a
    checkpoint. A step folder without meta.json is incomplete and ignored too."""
    root = run / "checkpoints"
    shutil.copytree(root / "2", root / ".tmp-9-4242")
    (root / ".tmp-10-4243" / "state").mkdir(parents=True)
    shutil.copytree(root / "2" / "state", root / "12" / "state")  # data but no meta.json
    assert resolve(run) == latest(run) == run / "checkpoints" / "2"
    with pytest.raises(CheckpointError, match=r"12: an incomplete checkpoint"):
        resolve(root / "12")
    save(run, 3, _state(0), META)  # saving goes on beside them
    assert latest(run).name == "3"


def test_a_failed_save_leaves_the_checkpoints_as_they_were(run, monkeypatch):
    before = _contents(run)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_json", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save(run, 3, _state(0), META)
    with pytest.raises(OSError, match="No space left"):
        save(run, 2, _state(0), META)  # replacing a step: the old one survives
    assert _contents(run) == before


def test_save_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="may not set step"):
        save(tmp_path, 1, {"x": np.zeros(1)}, {"step": 3})
    with pytest.raises(ValueError, match="integer >= 0"):
        save(tmp_path, -1, {"x": np.zeros(1)}, {})
    with pytest.raises(ValueError, match="keep must be at least 1"):
        save(tmp_path, 1, {"x": np.zeros(1)}, {}, keep=0)
    with pytest.raises(ValueError, match=r"state\['name'\]: a str is not an array"):
        save(tmp_path, 1, {"name": "policy"}, {})
    assert latest(tmp_path) is None


# ---- bad checkpoints -----------------------------------------------------------------------------


# tensorstore's callbacks for the failed reads may reach orbax's closed event loop afterwards
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_data_is_a_checkpoint_error_naming_the_folder(run, damage):
    folder = run / "checkpoints" / "2"
    for file in _data_files(folder):
        data = file.read_bytes()
        file.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x17junk" * 64)
    before = _snapshot(run)
    with pytest.raises(CheckpointError) as caught:
        restore(run, _state(0))
    message = str(caught.value)
    assert message.startswith(f"{folder / 'state'}: the checkpoint data cannot be read")
    assert "\n" not in message
    assert _snapshot(run) == before
    _assert_same(restore(run / "checkpoints" / "1", _state(0))[0], _state(0))  # others unharmed


def test_data_that_does_not_match_its_checksum_is_refused(run):
    """Damage that decompresses without an error still fails the manifest's CRC-32."""
    file = run / "checkpoints" / "2" / "meta.json"
    meta = json.loads(file.read_text())
    meta["leaves"][0]["crc32"] ^= 1
    file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"state\[.*is corrupted \(checksum mismatch\)"):
        restore(run, _state(0))


def test_bad_meta_json(run):
    folder = run / "checkpoints" / "2"
    file = folder / "meta.json"
    file.write_text('{"format": "gridrl-checkpoint/1", "step": ')
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(file))}: not valid JSON"):
        restore(folder, _state(0))
    file.write_text(json.dumps({"format": "gridrl-checkpoint/99", "step": 2, "leaves": []}))
    with pytest.raises(CheckpointError, match="format 'gridrl-checkpoint/99', this gridrl reads"):
        read_meta(folder)
    file.unlink()
    with pytest.raises(CheckpointError, match=r"incomplete checkpoint \(it needs meta.json"):
        restore(folder, _state(0))
    assert resolve(run).name == "1"  # the damaged one is no longer the run's newest


def test_expected_meta_names_the_first_differing_key(run):
    before = _snapshot(run)
    config = META["config"]
    cases = [
        (
            {"config": {**config, "hidden_size": 128}},
            "config.hidden_size: checkpoint 64, expected 128",
        ),
        (
            {"config": {**config, "layers": [64, 32]}},
            r"config.layers\[1\]: checkpoint 64, expected 32",
        ),
        ({"config": {**config, "gamma": 0.99}}, "config.gamma: checkpoint has none, expected 0.99"),
        ({"case": "case14"}, 'case: checkpoint "ieee118", expected "case14"'),
        ({"grid_fingerprint": "ab12"}, 'grid_fingerprint: checkpoint has none, expected "ab12"'),
    ]
    for expected, message in cases:
        with pytest.raises(CheckpointError, match=message):
            restore(run, _state(0), expected=expected)
    # tuples compare as the lists JSON stores
    restore(run, _state(0), expected={"config": {**config, "layers": (64, 64)}})
    assert _snapshot(run) == before


def test_a_different_structure_shape_or_dtype_names_the_leaf(run):
    before = _snapshot(run)
    w = re.escape("meta.json: state['params']['w']: ")
    target = _state(0)
    target["params"]["w"] = jnp.zeros((4, 4), jnp.float32)
    with pytest.raises(CheckpointError, match=w + r"checkpoint shape \(3, 4\), expected \(4, 4\)"):
        restore(run, target)
    target["params"]["w"] = jnp.zeros((3, 4), jnp.float16)
    with pytest.raises(CheckpointError, match=w + "checkpoint dtype float32, expected float16"):
        restore(run, target)
    target = {**_state(0), "extra": np.zeros(2)}
    with pytest.raises(CheckpointError, match=r"state\['extra'\] is in the target but not in"):
        restore(run, target)
    target = {k: v for k, v in _state(0).items() if k != "ema"}
    with pytest.raises(CheckpointError, match=r"state\['ema'\] is in the checkpoint but not in"):
        restore(run, target)
    abstract = jax.eval_shape(lambda: {**_state(0), "key": 0.5})  # a weakly typed float
    with pytest.raises(CheckpointError, match=r"state\['key'\]: checkpoint dtype key<fry>"):
        restore(run, abstract)
    target = {**_state(0), "key": jax.random.key_data(jax.random.key(0))}  # raw data, not a key
    key_mismatch = re.escape("state['key']: checkpoint shape (), expected (2,)")
    with pytest.raises(CheckpointError, match=key_mismatch):
        restore(run, target)
    assert _snapshot(run) == before


def test_empty_arrays_and_a_subtree_restore(tmp_path):
    """Empty leaves (a scenario without scheduled outages) round-trip though orbax refuses to
    store them; a subtree target reads only its own leaves."""
    state = {
        "policy": {"w": jnp.arange(6.0).reshape(2, 3)},
        "trainer": {"events": jnp.zeros((4, 0), jnp.int32), "key": jax.random.key(3)},
    }
    save(tmp_path, 1, state, {})
    restored, _ = restore(tmp_path, state)
    assert restored["trainer"]["events"].shape == (4, 0)
    assert restored["trainer"]["events"].dtype == jnp.int32
    policy, _ = restore(tmp_path, {"policy": state["policy"]}, subtree=True)
    np.testing.assert_array_equal(policy["policy"]["w"], state["policy"]["w"])
    with pytest.raises(CheckpointError, match=r"state\['policy'\]\['v'\] is in the target"):
        restore(tmp_path, {"policy": {"v": state["policy"]["w"]}}, subtree=True)
