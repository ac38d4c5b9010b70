"""Grid2Op chronics (the time series of an L2RPN dataset) as numpy arrays in the Grid's order.

A dataset's `chronics/` folder holds one folder per scenario (Grid2Op plays them in sorted
order). Each holds `;`-separated tables, optionally bz2-compressed, one row per step and one
column per element, headed by the element names of `grid.json`:

  load_p, load_q   MW / MVAr per load            prod_p   MW per generator
  prod_v           kV per generator (optional)   maintenance  0/1 per powerline (optional)

plus `time_interval.info` ("HH:MM", the step; 5 minutes when absent) and `start_datetime.info`
("YYYY-MM-DD HH:MM"). Forecast tables (`*_forecasted`) and prices are not read. Datasets whose
config draws maintenance at random (GridStateFromFileWithForecastsWithMaintenance, e.g.
l2rpn_wcci_2022_dev, l2rpn_idf_2023) have no maintenance table: there `maintenance` is None.
Row k is the grid's state at `start + k·timestep`; Grid2Op's reset shows row 0.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridrl.cases.grid2op import Grid2OpMapping, dataset_path, from_grid2op, grid2op_mapping
from gridrl.cases.ppc import CaseError

DEFAULT_TIMESTEP = dt.timedelta(minutes=5)
TABLE_SUFFIXES = (".csv.bz2", ".csv")


@dataclasses.dataclass(frozen=True)
class Chronics:
    """One scenario's time series, `n_steps` rows each, in the Grid's element order."""

    scenario: str
    start: dt.datetime | None
    timestep: dt.timedelta
    load_p: np.ndarray  # MW [n_steps, n_load], Grid2Op's load order
    load_q: np.ndarray  # MVAr [n_steps, n_load]
    load_bus: np.ndarray  # int [n_load]: Grid bus of each load
    prod_p: np.ndarray  # MW [n_steps, n_gen], Grid generator order
    prod_v: np.ndarray | None  # voltage setpoint, p.u. of the generator bus's base kV
    maintenance: np.ndarray | None  # bool [n_steps, n_branch], Grid branch order: True = out
    n_bus: int

    @property
    def n_steps(self) -> int:
        return int(self.load_p.shape[0])

    def _per_bus(self, per_load: np.ndarray) -> np.ndarray:
        per_bus = np.zeros((self.n_steps, self.n_bus))
        np.add.at(per_bus, (slice(None), self.load_bus), per_load)
        return per_bus

    @property
    def pd(self) -> np.ndarray:
        """MW [n_steps, n_bus]: the loads summed per Grid bus (the Grid's `pd` at each step)."""
        return self._per_bus(self.load_p)

    @property
    def qd(self) -> np.ndarray:
        """MVAr [n_steps, n_bus]."""
        return self._per_bus(self.load_q)


def scenario_folders(path: Path) -> list[Path]:
    """The dataset's scenarios, in the (sorted) order Grid2Op plays them."""
    root = path / "chronics"
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not folders:
        raise CaseError(f"{path}: no scenario folders under chronics/")
    return folders


def _table_file(folder: Path, name: str) -> Path | None:
    for suffix in TABLE_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


def _read_table(folder: Path, name: str, columns: tuple[str, ...]) -> np.ndarray | None:
    """[n_steps, len(columns)] in the order of `columns`; None where the table is absent."""
    file = _table_file(folder, name)
    if file is None:
        return None
    table = pd.read_csv(file, sep=";")
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise CaseError(
            f"{file}: no column for {missing[:5]} (renamed chronics, names_chronics_to_grid, "
            "are not supported)"
        )
    values = table.loc[:, list(columns)].to_numpy(dtype=float)
    if np.isnan(values).any():
        row, column = np.argwhere(np.isnan(values))[0]
        raise CaseError(f"{file}: row {row + 1}, column {columns[column]!r} is not a number")
    return values


def _read_info(file: Path) -> str | None:
    return file.read_text().strip() if file.is_file() else None


def _timestep(folder: Path) -> dt.timedelta:
    text = _read_info(folder / "time_interval.info")
    if text is None:
        return DEFAULT_TIMESTEP
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except ValueError:
        raise CaseError(f"{folder / 'time_interval.info'}: {text!r} is not HH:MM") from None
    return dt.timedelta(hours=hours, minutes=minutes)


def _start(folder: Path) -> dt.datetime | None:
    text = _read_info(folder / "start_datetime.info")
    if text is None:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        raise CaseError(f"{folder / 'start_datetime.info'}: {text!r} is not a date") from None


def _scenario_folder(path: Path, scenario: int | str) -> Path:
    folders = scenario_folders(path)
    if isinstance(scenario, str):
        match = [folder for folder in folders if folder.name == scenario]
        if not match:
            raise CaseError(f"{path}: no scenario {scenario!r}; it has {[f.name for f in folders]}")
        return match[0]
    if not -len(folders) <= scenario < len(folders):
        raise CaseError(f"{path}: scenario {scenario} out of range, it has {len(folders)}")
    return folders[scenario]


def _in_grid_order(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((values.shape[0], size), values.dtype)
    out[:, index] = values
    return out


def read_chronics(dataset: Any, scenario: int | str = 0) -> Chronics:
    """The chronics of one scenario of a Grid2Op dataset (environment, folder or bundled name),
    by index in Grid2Op's order or by folder name."""
    path = dataset_path(dataset)
    mapping: Grid2OpMapping = grid2op_mapping(path)
    grid = from_grid2op(path)
    folder = _scenario_folder(path, scenario)
    tables = {
        "load_p": _read_table(folder, "load_p", mapping.load_names),
        "load_q": _read_table(folder, "load_q", mapping.load_names),
        "prod_p": _read_table(folder, "prod_p", mapping.gen_names),
        "prod_v": _read_table(folder, "prod_v", mapping.gen_names),
        "maintenance": _read_table(folder, "maintenance", mapping.line_names),
    }
    for required in ("load_p", "load_q", "prod_p"):
        if tables[required] is None:
            raise CaseError(f"{folder}: no {required} table ({' or '.join(TABLE_SUFFIXES)})")
    lengths = {name: len(table) for name, table in tables.items() if table is not None}
    if len(set(lengths.values())) != 1:
        raise CaseError(f"{folder}: tables have different numbers of rows {lengths}")
    prod_v = tables["prod_v"]
    if prod_v is not None:
        gen_kv = np.asarray(grid.base_kv)[np.asarray(grid.gen_bus)[mapping.gen_index]]
        prod_v = _in_grid_order(prod_v / gen_kv, mapping.gen_index, grid.n_gen)
    maintenance = tables["maintenance"]
    if maintenance is not None:
        maintenance = _in_grid_order(maintenance != 0, mapping.line_branch, grid.n_branch)
    return Chronics(
        scenario=folder.name,
        start=_start(folder),
        timestep=_timestep(folder),
        load_p=tables["load_p"],
        load_q=tables["load_q"],
        load_bus=np.asarray(mapping.load_bus),
        prod_p=_in_grid_order(tables["prod_p"], mapping.gen_index, grid.n_gen),
        prod_v=prod_v,
        maintenance=maintenance,
        n_bus=grid.n_bus,
    )
