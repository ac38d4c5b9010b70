"""Grid2Op datasets (the L2RPN grids, e.g. the 118-bus ones bundled in the `grid2op` wheel) as a
`Grid`, plus the map from Grid2Op's element order to the Grid's.

A Grid2Op dataset is a folder holding `grid.json` (a pandapower network), `config.py` (the
environment's classes and thermal limits) and `chronics/` (time series, read by
`gridrl.timeseries.chronics`). The grid is built from `grid.json` through `from_pandapower`, so
it has one bus per substation (Grid2Op's second busbars exist only inside its backends).

Grid2Op's order is pandapower's: powerlines are `net.line` rows then `net.trafo` rows, loads are
`net.load` rows, generators `net.gen` rows. Its thermal limits are currents (A) at the origin
end of each powerline (the `from_bus` of a line, the high-voltage side of a transformer); the
Grid's `rate_a` is the apparent power that current carries at nominal voltage,
√3·V_kV·I_kA MVA. pandapower's "no limit" placeholder current stays unrated (inf).

grid2op itself is needed only to find bundled datasets by name and to read thermal limits from
`config.py` (which imports grid2op); nothing here downloads.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gridrl.cases.grid import Grid
from gridrl.cases.ieee118 import read_only
from gridrl.cases.pandapower import from_pandapower
from gridrl.cases.ppc import CaseError

# The bundled datasets built on the IEEE 118-bus grid (all ship with their chronics).
BUNDLED_118 = ("rte_case118_example", "l2rpn_wcci_2022_dev", "l2rpn_idf_2023")

# pandapower's max_i_ka where a case gives no rating (converter.pypower.from_ppc MAX_VAL).
PANDAPOWER_UNRATED_KA = 99999.0

GRID_FILE = "grid.json"
CONFIG_FILE = "config.py"


@dataclasses.dataclass(frozen=True)
class Grid2OpMapping:
    """Where each Grid2Op element of a dataset sits in its `Grid` (indices are numpy int arrays
    in Grid2Op's element order)."""

    dataset: Path
    line_branch: np.ndarray  # [n_line]: Grid branch index of each powerline
    load_bus: np.ndarray  # [n_load]: Grid bus index of each load
    gen_index: np.ndarray  # [n_gen]: Grid generator index of each generator
    storage_bus: np.ndarray  # [n_storage]: Grid bus index of each storage unit
    line_names: tuple[str, ...]
    load_names: tuple[str, ...]
    gen_names: tuple[str, ...]
    thermal_limit_a: np.ndarray  # [n_line]: A at the origin end (pandapower's placeholder: unrated)

    @property
    def n_line(self) -> int:
        return len(self.line_names)

    @property
    def n_load(self) -> int:
        return len(self.load_names)

    @property
    def n_gen(self) -> int:
        return len(self.gen_names)


def grid2op_data_dir() -> Path:
    """The folder of datasets bundled in the installed grid2op wheel."""
    try:
        import grid2op
    except ImportError:
        raise CaseError("grid2op is not installed: pip install 'gridrl[grid2op]'") from None
    return Path(grid2op.__file__).parent / "data"


def dataset_path(source: Any) -> Path:
    """The dataset folder of `source`: a Grid2Op environment, a folder holding a `grid.json`, or
    the name of a dataset bundled with grid2op (e.g. "l2rpn_idf_2023")."""
    if hasattr(source, "get_path_env"):
        path = Path(source.get_path_env())
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_dir() and not path.is_absolute() and len(path.parts) == 1:
            path = grid2op_data_dir() / path
    else:
        raise CaseError(
            "expected a grid2op environment, a dataset folder or a bundled dataset name, "
            f"got {type(source).__name__}"
        )
    if not (path / GRID_FILE).is_file():
        raise CaseError(f"{path} is not a Grid2Op dataset: it has no {GRID_FILE}")
    return path


def _names(frame, kind: str) -> tuple[str, ...]:
    """Grid2Op's element names are the pandapower names (it invents names only where the
    network has none, which the datasets never do)."""
    names = frame.get("name")
    if names is None or names.isna().any():
        raise CaseError(f"{GRID_FILE}: every {kind} needs a name to be matched with Grid2Op")
    return tuple(str(name) for name in names)


@functools.lru_cache(maxsize=8)
def _read_dataset(path: Path) -> tuple[Grid, Grid2OpMapping]:
    """The unrated Grid of `path`/grid.json and its mapping (limits: pandapower's own)."""
    import pandapower

    try:
        net = pandapower.from_json(str(path / GRID_FILE))
    except Exception as error:  # pandapower raises many kinds on a malformed file
        raise CaseError(f"{path / GRID_FILE}: pandapower cannot read it ({error})") from None
    if len(net.ext_grid) or len(net.sgen):
        raise CaseError(
            f"{path / GRID_FILE}: Grid2Op datasets model the slack as a generator with "
            "slack=True and have no static generators; this network has ext_grid or sgen"
        )
    grid = read_only(from_pandapower(net, name=path.name))
    lookups = net._pd2ppc_lookups  # filled by the conversion above
    line_start, line_end = lookups["branch"]["line"]
    trafo_start, trafo_end = lookups["branch"].get("trafo", (line_end, line_end))
    bus = np.asarray(lookups["bus"])
    line_branch = np.r_[np.arange(line_start, line_end), np.arange(trafo_start, trafo_end)]
    # Grid2Op's default limits, as its PandaPowerBackend derives them
    trafo_limit_a = 1000 * net.trafo.sn_mva.to_numpy() / (np.sqrt(3) * net.trafo.vn_hv_kv)
    m = Grid2OpMapping(
        dataset=path,
        line_branch=line_branch,
        load_bus=bus[net.load.bus.to_numpy()],
        gen_index=np.asarray(lookups["gen"])[: len(net.gen)],
        storage_bus=bus[net.storage.bus.to_numpy()],
        line_names=_names(net.line, "line") + _names(net.trafo, "transformer"),
        load_names=_names(net.load, "load"),
        gen_names=_names(net.gen, "generator"),
        thermal_limit_a=np.r_[1000 * net.line.max_i_ka.to_numpy(), trafo_limit_a],
    )
    frozen = (m.line_branch, m.load_bus, m.gen_index, m.storage_bus, m.thermal_limit_a)
    for array in frozen:
        array.flags.writeable = False  # the mapping is cached and shared
    return grid, m


def _config_thermal_limits(path: Path) -> Any:
    """The `thermal_limits` entry of the dataset's config.py (None where it gives none); the file
    is Python that imports grid2op, executed as grid2op.make executes it."""
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"grid2op_config_{path.name}", config_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.config.get("thermal_limits")
    except Exception as error:
        raise CaseError(f"{config_file}: cannot read its config ({error})") from None


def _limits_in_line_order(
    limits: Sequence[float] | Mapping[str, float] | np.ndarray, mapping: Grid2OpMapping
) -> np.ndarray:
    if isinstance(limits, Mapping):
        missing = sorted(set(mapping.line_names) - set(limits))
        if missing:
            raise CaseError(f"{mapping.dataset}: no thermal limit for powerlines {missing[:5]}")
        limits = [limits[name] for name in mapping.line_names]
    array = np.asarray(limits, dtype=float)
    if array.shape != (mapping.n_line,):
        raise CaseError(
            f"{mapping.dataset}: {array.shape} thermal limits for {mapping.n_line} powerlines"
        )
    if not np.all(array > 0):  # also catches NaN
        bad = int(np.flatnonzero(~(array > 0))[0])
        raise CaseError(
            f"{mapping.dataset}: thermal limit of powerline {mapping.line_names[bad]!r} is "
            f"{array[bad]}, not a positive current"
        )
    return array


def _check_env_matches(env: Any, mapping: Grid2OpMapping) -> None:
    for kind, names in (
        ("name_line", mapping.line_names),
        ("name_load", mapping.load_names),
        ("name_gen", mapping.gen_names),
    ):
        if tuple(str(name) for name in getattr(env, kind)) != names:
            raise CaseError(
                f"the environment's {kind} differ from {mapping.dataset / GRID_FILE}: "
                "was it made with another grid file?"
            )


def grid2op_mapping(source: Any) -> Grid2OpMapping:
    """The map from Grid2Op's element order to the Grid's, with the thermal limits (A) the
    environment uses: `env.get_thermal_limit()` for an environment, else the dataset's
    config.py, else Grid2Op's default (pandapower's ratings)."""
    path = dataset_path(source)
    _, mapping = _read_dataset(path.resolve())
    if hasattr(source, "get_thermal_limit"):
        _check_env_matches(source, mapping)
        limits = source.get_thermal_limit()
    else:
        limits = _config_thermal_limits(path)
    if limits is None:
        return mapping
    return dataclasses.replace(mapping, thermal_limit_a=_limits_in_line_order(limits, mapping))


def ratings_mva(grid: Grid, mapping: Grid2OpMapping) -> np.ndarray:
    """The Grid's `rate_a` with each powerline's thermal limit as MVA at nominal voltage of its
    origin bus (the Grid's from bus); pandapower's placeholder current becomes inf."""
    branch = mapping.line_branch
    origin_kv = np.asarray(grid.base_kv)[np.asarray(grid.f_bus)[branch]]
    current_ka = mapping.thermal_limit_a / 1000
    rating = np.sqrt(3) * origin_kv * current_ka
    unrated = current_ka >= PANDAPOWER_UNRATED_KA * (1 - 1e-6)  # float32 limits round
    rate_a = np.array(grid.rate_a, dtype=float)
    rate_a[branch] = np.where(unrated, np.inf, rating)
    return rate_a


def from_grid2op(source: Any) -> Grid:
    """The Grid of a Grid2Op environment or dataset (folder, or bundled name such as
    "l2rpn_idf_2023"), in pandapower's internal order, rated by the dataset's thermal limits
    (see `grid2op_mapping` for where each Grid2Op element lands)."""
    grid, _ = _read_dataset(dataset_path(source).resolve())
    mapping = grid2op_mapping(source)
    return grid.replace(rate_a=ratings_mva(grid, mapping))
