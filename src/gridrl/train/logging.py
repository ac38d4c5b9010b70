"""A training run's metrics: one JSON line per logged step in RUN_DIR/metrics.jsonl, and the same
scalars as TensorBoard events in RUN_DIR/tensorboard/.

    with RunLogger(run_dir) as logger:
        logger.truncate_after(checkpoint_step)  # on resume only
        logger.log(step, {"return": 12.5, "loss/policy": 0.01})

metrics.jsonl is the record a program reads (`read_metrics`): each line is flushed as it is
logged, so a killed run loses at most the line being written. A non-finite value is written
as null (JSON has no NaN) and read back as NaN. On resume, `truncate_after` drops the lines of
steps after the checkpoint's and tells TensorBoard to hide its events of those steps, so a
resumed run's logs equal those of a run that was never interrupted.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter

from gridrl.io import atomic_write_text

__all__ = ["METRICS", "TENSORBOARD", "MetricsError", "NullLogger", "RunLogger", "read_metrics"]

METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"

StrPath = str | os.PathLike[str]


class MetricsError(ValueError):
    """A metrics file that cannot be read; the message names the file and the line."""


def _value(name: str, value: Any) -> int | float | None:
    """A scalar as it is written: integers stay integers, non-finite floats become None."""
    if isinstance(value, bool | int | np.integer):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric {name!r}: {value!r} is not a number") from None
    return number if math.isfinite(number) else None


def _row(step: int, scalars: Mapping[str, Any]) -> dict[str, int | float | None]:
    if "step" in scalars:
        raise ValueError("'step' is the row's own key, not a metric name")
    return {"step": int(step), **{str(name): _value(name, v) for name, v in scalars.items()}}


def _parse(line: str, path: Path, number: int) -> dict[str, Any]:
    """One line of metrics.jsonl as a row, nulls as NaN; MetricsError naming the line."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise MetricsError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
    if not isinstance(row, dict) or not isinstance(row.get("step"), int):
        raise MetricsError(f'{path}, line {number}: not a row (a JSON object with an int "step")')
    return {key: math.nan if value is None else value for key, value in row.items()}


def _read(path: Path, *, allow_cut_last_line: bool) -> list[tuple[dict[str, Any], str]]:
    """The rows of a metrics file with their lines. A last line without its newline is a
    write cut short by a kill: dropped when `allow_cut_last_line`, else an error if bad."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cut = number == len(lines)  # text did not end with a newline
        try:
            rows.append((_parse(line, path, number), line))
        except MetricsError:
            if cut and allow_cut_last_line:
                break
            raise
    return rows


def read_metrics(run_dir: StrPath) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl (`run_dir` is the run folder or the file itself), in
    order, non-finite values as NaN; MetricsError naming the file and line of a bad line."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / METRICS
    if not path.is_file():
        raise MetricsError(f"{path}: no such metrics file")
    return [row for row, _ in _read(path, allow_cut_last_line=False)]


class RunLogger:
    """Appends metrics rows to RUN_DIR/metrics.jsonl and, with `tensorboard`, writes them as
    TensorBoard scalars to RUN_DIR/tensorboard/. A context manager; `close` when done."""

    def __init__(self, run_dir: StrPath, *, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS
        self._file = self.path.open("a", encoding="utf-8")
        self._writer = self._open_writer() if tensorboard else None

    def _open_writer(self, purge_step: int | None = None) -> SummaryWriter:
        # tensorboardX names event files by the second and host alone: a writer opened within
        # the same second (a quick restart, truncate_after) would overwrite the last one's file.
        suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
        return SummaryWriter(
            logdir=str(self.run_dir / TENSORBOARD),
            purge_step=purge_step,
            flush_secs=10,
            filename_suffix=suffix,
        )

    def log(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Append one row {"step": step, **scalars} and write the scalars to TensorBoard."""
        if self._file.closed:
            raise ValueError(f"{self.path}: the logger is closed")
        row = _row(step, scalars)
        self._file.write(json.dumps(row, allow_nan=False) + "\n")
        self._file.flush()
        if self._writer is not None:
            for name, value in scalars.items():
                if math.isfinite(float(value)):  # no point for "no episode ended this update"
                    self._writer.add_scalar(str(name), float(value), global_step=int(step))

    def truncate_after(self, step: int) -> int:
        """Drop the rows of steps after `step` (the checkpoint a run resumes from), rewriting
        metrics.jsonl atomically, and hide TensorBoard's events from step + 1 on. Returns the
        number of rows dropped."""
        if self._file.closed:
            raise ValueError(f"{self.path}: the logger is closed")
        self._file.close()
        try:
            rows = _read(self.path, allow_cut_last_line=True) if self.path.is_file() else []
            kept = [line for row, line in rows if row["step"] <= step]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        finally:
            self._file = self.path.open("a", encoding="utf-8")
        if self._writer is not None:
            # TensorBoard hides the events of steps >= purge_step written before this one.
            self._writer.close()
            self._writer = self._open_writer(purge_step=int(step) + 1)
        return len(rows) - len(kept)

    def close(self) -> None:
        """Flush and close the metrics file and the TensorBoard writer (again: no effect)."""
        self._file.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class NullLogger(RunLogger):
    """A logger that writes nothing: the processes of a multi-host run other than process 0."""

    def __init__(self) -> None:  # no folder, no files
        pass

    def log(self, step: int, scalars: Mapping[str, Any]) -> None:
        pass

    def truncate_after(self, step: int) -> int:
        return 0

    def close(self) -> None:
        pass
