"""gridrl.train.logging: metrics rows round trip through metrics.jsonl (NaN as null), a resumed
run's log equals an uninterrupted one's, and the scalars reach TensorBoard's event files."""

import json
import math
import re
import struct
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from gridrl.train.logging import METRICS, MetricsError, RunLogger, read_metrics

START = event_pb2.SessionLog.START


def _read_events(run: Path) -> list[event_pb2.Event]:
    """The events of the run's TensorBoard files (TFRecords: length, its CRC, the Event
    proto, its CRC), in file then write order."""
    events = []
    for file in sorted((run / "tensorboard").glob("events.out.tfevents.*")):
        data, offset = file.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            events.append(event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length]))
            offset += 12 + length + 4
    return events


def _events(run: Path) -> list[tuple[int, str, float]]:
    """(step, tag, value) of every scalar written to TensorBoard."""
    return [(e.step, v.tag, v.simple_value) for e in _read_events(run) for v in e.summary.value]


def _log_steps(logger: RunLogger, steps) -> None:
    for step in steps:
        logger.log(step, {"return": step / 10, "loss/policy": 1.0 / (step + 1)})


def test_rows_round_trip(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as logger:
        logger.log(0, {"return": -120.5, "episodes": np.int64(4), "lr": jnp.float32(3e-4)})
        logger.log(100, {"return": -80.25, "episodes": 8, "lr": np.float64(1.5e-4)})
        # flushed at once: readable while the run goes on
        assert [row["step"] for row in read_metrics(tmp_path)] == [0, 100]
    rows = read_metrics(tmp_path / METRICS)
    assert rows == [
        {"step": 0, "return": -120.5, "episodes": 4, "lr": float(np.float32(3e-4))},
        {"step": 100, "return": -80.25, "episodes": 8, "lr": 1.5e-4},
    ]
    assert isinstance(rows[0]["episodes"], int)
    assert not (tmp_path / "tensorboard").exists()


def test_non_finite_values_are_null(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as logger:
        logger.log(1, {"loss": float("nan"), "grad": np.inf, "kl": jnp.asarray(-jnp.inf), "x": 2.0})
    line = (tmp_path / METRICS).read_text()
    assert json.loads(line) == {"step": 1, "loss": None, "grad": None, "kl": None, "x": 2.0}
    assert "NaN" not in line and "Infinity" not in line
    (row,) = read_metrics(tmp_path)
    assert math.isnan(row["loss"]) and math.isnan(row["grad"]) and row["x"] == 2.0


def test_log_refuses_bad_rows(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as logger:
        with pytest.raises(ValueError, match="'step' is the row's own key"):
            logger.log(1, {"step": 3})
        with pytest.raises(ValueError, match="metric 'x': 'high' is not a number"):
            logger.log(1, {"x": "high"})
    assert (tmp_path / METRICS).read_text() == ""  # nothing half-written
    with pytest.raises(ValueError, match="closed"):
        logger.log(2, {"x": 1.0})


def test_a_resumed_run_logs_what_an_uninterrupted_one_does(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    with RunLogger(straight) as logger:
        _log_steps(logger, range(0, 60, 10))
    # killed after logging step 40 (its checkpoint is at step 30) and the write of step 50 cut
    with RunLogger(resumed) as logger:
        _log_steps(logger, range(0, 50, 10))
    with (resumed / METRICS).open("a") as file:
        file.write('{"step": 50, "return": 5.')
    with RunLogger(resumed) as logger:
        assert logger.truncate_after(30) == 1  # step 40's row (the cut line is not a row)
        assert [row["step"] for row in read_metrics(resumed)] == [0, 10, 20, 30]
        _log_steps(logger, range(40, 60, 10))
    assert (resumed / METRICS).read_bytes() == (straight / METRICS).read_bytes()
    assert read_metrics(resumed) == read_metrics(straight)
    # TensorBoard: the first run's step-40 events stay in its file, and the resumed writer's
    # purge marker (step 31) tells TensorBoard to hide them
    assert sorted(set(_events(resumed))) == sorted(set(_events(straight)))
    starts = [e.step for e in _read_events(resumed) if e.session_log.status == START]
    assert starts == [31]


def test_truncate_after_without_a_file_or_rows_to_drop(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as logger:
        assert logger.truncate_after(5) == 0
        _log_steps(logger, [1, 2])
        assert logger.truncate_after(5) == 0
        logger.log(3, {"return": 1.0})
    assert [row["step"] for row in read_metrics(tmp_path)] == [1, 2, 3]


def test_tensorboard_event_file_holds_the_scalars(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log(7, {"return": 1.5, "loss/value": 0.25})
        logger.log(8, {"return": 2.5, "loss/value": float("nan")})
    (file,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    assert file.stat().st_size > 0
    events = _events(tmp_path)
    # a non-finite value ("no episode ended this update") is no point on the curve
    assert events == [(7, "return", 1.5), (7, "loss/value", 0.25), (8, "return", 2.5)]


def test_read_metrics_names_the_file_and_line(tmp_path):
    path = tmp_path / METRICS
    path.write_text('{"step": 0, "x": 1}\n\n{"step": 1, "x": \n{"step": 2}\n')
    with pytest.raises(MetricsError, match=re.escape(f"{path}, line 3: not valid JSON")):
        read_metrics(tmp_path)
    path.write_text('{"step": 0}\n["step", 1]\n')
    with pytest.raises(MetricsError, match=r"line 2: not a row \(a JSON object with an int"):
        read_metrics(path)
    path.write_text('{"step": 0}\n{"step": 1, "x"')  # a cut last line is an error when reading
    with pytest.raises(MetricsError, match="line 2: not valid JSON"):
        read_metrics(path)
    with pytest.raises(MetricsError, match="no such metrics file"):
        read_metrics(tmp_path / "elsewhere")
    # truncate_after refuses a bad line in the middle and leaves the file as it was
    path.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with RunLogger(tmp_path, tensorboard=False) as logger:
        with pytest.raises(MetricsError, match="line 2"):
            logger.truncate_after(1)
        logger.log(3, {"x": 1.0})
    assert path.read_text() == '{"step": 0}\nnot json\n{"step": 2}\n{"step": 3, "x": 1.0}\n'
