"""gridrl.cases: the MATPOWER reader (checked against an independent row count of the PGLib
files), its error messages, and `load`."""

import re
from pathlib import Path

import numpy as np
import pytest

from gridrl.cases import BUILT_IN, CaseError, CostModel, load, read_matpower

PGLIB_FILES = [
    "pglib_opf_case14_ieee.m",
    "pglib_opf_case30_ieee.m",
    "pglib_opf_case118_ieee.m",
    "pglib_opf_case118_ieee__api.m",
    "pglib_opf_case118_ieee__sad.m",
    "pglib_opf_case300_ieee.m",
    "pglib_opf_case1354_pegase.m",
]


def _matrix_rows(text: str, name: str) -> list[list[str]]:
    """Independent reading: the data lines of `mpc.<name> = [ ... ];`, split on whitespace."""
    body = re.search(rf"mpc\.{name}\s*=\s*\[(.*?)\];", text, re.DOTALL).group(1)
    lines = (line.split("%")[0].strip().rstrip(";") for line in body.splitlines())
    return [line.split() for line in lines if line]


@pytest.mark.parametrize("file_name", PGLIB_FILES)
def test_reads_pglib_files_with_the_file_counts(pglib_dir: Path, file_name: str) -> None:
    path = pglib_dir / file_name
    grid = read_matpower(path)
    text = path.read_text()
    bus, gen, branch = (_matrix_rows(text, name) for name in ("bus", "gen", "branch"))
    gencost = _matrix_rows(text, "gencost")
    assert (grid.n_bus, grid.n_gen, grid.n_branch) == (len(bus), len(gen), len(branch))
    assert len(gencost) == grid.n_gen
    assert grid.cost_model.tolist() == [int(row[0]) for row in gencost]
    assert grid.bus_ids == tuple(int(row[0]) for row in bus)
    assert grid.pd.sum() == pytest.approx(sum(float(row[2]) for row in bus), rel=1e-12)
    assert grid.pmax.tolist() == [float(row[8]) for row in gen]
    assert grid.x.tolist() == [float(row[3]) for row in branch]
    rate_a = [float(row[5]) for row in branch]
    assert grid.rate_a.tolist() == [rate if rate > 0 else np.inf for rate in rate_a]
    assert grid.base_mva == float(re.search(r"mpc\.baseMVA\s*=\s*([\d.]+)", text).group(1))
    assert grid.name == path.stem


# A small valid case: 3 buses, 2 generators (polynomial and piecewise-linear costs), 3 branches,
# with the syntax the reader must accept: comments, commas, Inf, 1e-3, '...' continuations,
# rows on one line separated by ';', a cell array and an unrelated matrix.
VALID = """function mpc = tiny
% a comment; with a semicolon
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
    1, 3, 0,   0, 0, 0, 1, 1, 0, 138, 1, 1.1, 0.9;   % slack
    2  1  50  10  0  0  1  1  0  138  1  1.1  0.9;
    3  2  25  5   0  0  1  1  0  138  1  1.1  0.9 % no semicolon
];
mpc.gen = [
    1  0  0  Inf  -Inf  1  100  1  200  0;
    3  10 0  50   -50   1  100  1  1e2  1e-3;
];
mpc.gencost = [
    2  0  0  3  0.01  20  0  0  0  0;
    1  0  0  3  0  0  50  1000  100  ...
       2500;
];
mpc.branch = [
    1 2 0.01 0.1 0.02 100 0 0 0 0 1 -60 60; 1 3 0.01 0.1 0 0 0 0 0 0 1 -60 60;
    2  3  0.01  0.1  0  0  0  0  0.98  2  1  -60  60;
];
mpc.bus_name = {
    'one; with % inside';
    'two';
    'three';
};
mpc.areas = [1 1];
"""


def _write(tmp_path: Path, text: str, name: str = "case.m") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_the_syntax_of_a_small_case(tmp_path: Path) -> None:
    grid = read_matpower(_write(tmp_path, VALID))
    assert (grid.n_bus, grid.n_gen, grid.n_branch) == (3, 2, 3)
    assert grid.bus_ids == (1, 2, 3)
    assert grid.pd.tolist() == [0.0, 50.0, 25.0]
    assert grid.qmax[0] == np.inf and grid.qmin[0] == -np.inf
    assert grid.pmax.tolist() == [200.0, 100.0] and grid.pmin.tolist() == [0.0, 1e-3]
    assert grid.cost_model.tolist() == [CostModel.POLYNOMIAL, CostModel.PIECEWISE_LINEAR]
    assert grid.cost_poly[0].tolist() == [0.01, 20.0, 0.0]
    assert grid.cost_pwl[1].tolist() == [[0.0, 0.0], [50.0, 1000.0], [100.0, 2500.0]]
    assert grid.rate_a.tolist() == [100.0, np.inf, np.inf]
    assert grid.tap.tolist() == [1.0, 1.0, 0.98]
    assert grid.shift[2] == pytest.approx(np.deg2rad(2.0))
    assert grid.name == "case"


def _broken(tmp_path: Path, old: str, new: str) -> str:
    assert old in VALID
    with pytest.raises(CaseError) as error:
        read_matpower(_write(tmp_path, VALID.replace(old, new, 1)))
    return str(error.value)


def test_a_row_of_different_length_names_file_matrix_row_and_line(tmp_path: Path) -> None:
    message = _broken(tmp_path, "25  5   0  0  1  1  0  138  1  1.1  0.9", "25  5  0  1  1  0")
    assert str(tmp_path / "case.m") in message
    assert "matrix 'bus', row 3" in message and "line 8" in message
    assert "has 8 entries; row 1 has 13" in message


def test_too_few_columns_for_matpower(tmp_path: Path) -> None:
    short_gen = "1  0  0  Inf  -Inf  1  100  1  200;\n    3  10 0  50   -50   1  100  1  1e2;"
    message = _broken(
        tmp_path,
        "1  0  0  Inf  -Inf  1  100  1  200  0;\n    3  10 0  50   -50   1  100  1  1e2  1e-3;",
        short_gen,
    )
    assert "matrix 'gen', row 1" in message and "needs at least 10" in message


def test_a_non_numeric_cell(tmp_path: Path) -> None:
    message = _broken(tmp_path, "2  3  0.01  0.1  0  0", "2  3  0.01  abc  0  0")
    assert "matrix 'branch', row 3, column 4: 'abc' is not a number" in message
    assert "case.m, line 21" in message


def test_an_unknown_bus(tmp_path: Path) -> None:
    message = _broken(tmp_path, "3  10 0  50", "7  10 0  50")
    assert str(tmp_path / "case.m") in message
    assert "matrix 'gen', row 2" in message and "bus 7" in message
    message = _broken(tmp_path, "2  3  0.01  0.1  0  0", "2  9  0.01  0.1  0  0")
    assert "matrix 'branch', row 3" in message and "bus 9" in message


def test_no_slack_bus(tmp_path: Path) -> None:
    message = _broken(tmp_path, "1, 3, 0,", "1, 2, 0,")
    assert str(tmp_path / "case.m") in message and "matrix 'bus'" in message
    assert "no reference (slack) bus" in message


@pytest.mark.parametrize("name", ["bus", "gen", "branch"])
def test_a_missing_matrix(tmp_path: Path, name: str) -> None:
    message = _broken(tmp_path, f"mpc.{name} = [", f"mpc.{name}_unused = [")
    assert str(tmp_path / "case.m") in message and f"no '{name}' matrix" in message


def test_an_unclosed_matrix(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match=r"case\.m, line 5: 'bus' opens '\['"):
        read_matpower(_write(tmp_path, VALID.split("];")[0]))


def test_unsupported_format_version(tmp_path: Path) -> None:
    message = _broken(tmp_path, "mpc.version = '2';", "mpc.version = '1';")
    assert "version '1' is not supported" in message


def test_missing_file_and_not_a_matpower_file(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="no such MATPOWER case file"):
        read_matpower(tmp_path / "absent.m")
    with pytest.raises(CaseError, match="not a MATPOWER case file"):
        read_matpower(_write(tmp_path, "x = 1;\ndisp(x)\n", "script.m"))
    with pytest.raises(CaseError, match="not a MATPOWER case file"):
        read_matpower(_write(tmp_path, "", "empty.m"))
    binary = tmp_path / "binary.m"
    binary.write_bytes(bytes(range(128, 256)))
    with pytest.raises(CaseError, match="not a MATPOWER case file"):
        read_matpower(binary)


def test_load_reads_m_files_and_names_the_known_cases(tmp_path: Path) -> None:
    grid = load(_write(tmp_path, VALID))
    assert grid.n_bus == 3
    with pytest.raises(CaseError) as error:
        load("case9999")
    assert "case9999" in str(error.value)
    assert all(name in str(error.value) for name in BUILT_IN)


def test_load_pandapower_case_by_name() -> None:
    grid = load("case14")
    assert (grid.n_bus, grid.n_gen, grid.n_branch) == (14, 5, 20)
    assert load("case14") is grid  # built once per process
    with pytest.raises(ValueError, match="read-only"):
        grid.pd[0] = 0.0


def test_an_infinite_number_outside_the_limits(tmp_path: Path) -> None:
    message = _broken(tmp_path, "2  1  50  10", "2  1  Inf  10")
    assert f"{tmp_path / 'case.m'}, line 7: matrix 'bus', row 2, column 3" in message
    assert "inf is not a finite number (only limits may be Inf)" in message
    message = _broken(tmp_path, "2  3  0.01  0.1  0  0", "2  3  0.01  -Inf  0  0")
    assert "line 21: matrix 'branch', row 3, column 4: -inf is not a finite" in message
    message = _broken(tmp_path, "mpc.baseMVA = 100;", "mpc.baseMVA = Inf;")
    assert "line 4: baseMVA must be positive and finite, got inf" in message


def test_a_zero_impedance_branch_is_refused_unless_out_of_service(tmp_path: Path) -> None:
    message = _broken(tmp_path, "2  3  0.01  0.1  0  0", "2  3  0  0  0  0")
    assert f"{tmp_path / 'case.m'}, line 21: matrix 'branch', row 3" in message
    assert "branch 2-3 has zero impedance (r = x = 0)" in message
    assert "x = 1e-4 p.u." in message and "BR_STATUS = 0" in message
    message = _broken(tmp_path, "2  3  0.01  0.1  0  0", "2  3  0.01  0  0  0")
    assert "branch 2-3 has zero reactance (x = 0)" in message
    out = VALID.replace(
        "2  3  0.01  0.1  0  0  0  0  0.98  2  1", "2  3  0  0  0  0  0  0  0.98  2  0"
    )
    assert read_matpower(_write(tmp_path, out)).n_branch == 3
