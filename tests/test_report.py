"""`gridrl report`: the HTML report built from synthetic evaluation JSONs (the evaluation itself
is not run here), its input checks, the training log reader and a rendering with chromium."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import matplotlib.image as mpimg
import numpy as np
import pytest

from gridrl.cases import load
from gridrl.cli import main
from gridrl.evaluate import ReportError, read_evaluation, read_training_log, write_report
from gridrl.evaluate.network_map import branch_labels, network_layout
from gridrl.evaluate.report import INTERFACE_KEYS, INTERFACE_METRICS
from gridrl.evaluate.schema import FORMAT, TRACE_SERIES

SCREENSHOT = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_report.py"
sys.path.insert(0, str(SCREENSHOT.parent))
from screenshot_report import find_browser  # noqa: E402

N_BRANCH = 186  # ieee118
TRACE_STEPS = 24


def synthetic_trace(rng: np.random.Generator, steps: int, scale: float) -> dict:
    """A plausible short episode: a daily load shape, sun at noon, gusty wind, 5 loaded branches."""
    hours = np.arange(steps) * 24.0 / steps
    demand = 3700 + 600 * np.sin((hours - 9) / 24 * 2 * np.pi) * scale
    solar = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None) * 380
    wind = 700 + 150 * np.cumsum(rng.normal(0, 0.3, steps))
    drift = np.cumsum(rng.normal(0, 0.03, (N_BRANCH, steps)), axis=1)
    loading = np.clip(rng.uniform(0.05, 0.8, (N_BRANCH, 1)) + drift, 0.0, 0.8) * scale
    loading[7] = 0.9 + 0.15 * np.sin(hours / 24 * 2 * np.pi) * scale
    in_service = np.ones(N_BRANCH, bool)
    in_service[[20, 21]] = False
    loading[~in_service] = 0.0
    top = np.argsort(-loading.max(axis=1))[:5]
    worst = int(np.argmax(loading.max(axis=0)))
    return {
        "episode": 0,
        "time_h": hours.tolist(),
        "demand_mw": demand.tolist(),
        "wind_mw": wind.tolist(),
        "solar_mw": solar.tolist(),
        "renewable_available_mw": (wind + solar + 40).tolist(),
        "generation_cost_per_hour": (30.0 * (demand - wind - solar)).tolist(),
        "energy_not_served_mw": np.where(hours > 18, 25.0 * (scale - 1), 0.0).clip(0).tolist(),
        "max_loading": loading.max(axis=0).tolist(),
        "top_branches": {
            "index": top.tolist(),
            "label": [f"b{k}" for k in top],
            "loading": loading[top].tolist(),
        },
        "worst": {
            "step": worst,
            "time_h": float(hours[worst]),
            "loading": loading[:, worst].tolist(),
            "in_service": in_service.tolist(),
        },
    }


def synthetic_evaluation(
    policy: str, scenarios: list[str], seed: int = 0, steps: int = TRACE_STEPS
) -> dict:
    """An evaluation JSON of the documented format with distinct, recognisable numbers, over a
    day of `steps` steps."""
    rng = np.random.default_rng(seed)
    runs = {}
    for j, name in enumerate(scenarios):
        scale = 1.0 + 0.1 * j + 0.05 * seed
        runs[name] = {
            "policy": policy,
            "episodes": 2,
            "seeds": [0, 1],
            "operating_cost_per_hour": 123456.0 + 1000 * seed + 100 * j,
            "cost_gap_vs_sced": None if policy == "sced" and j else 0.01 * seed,
            "energy_not_served_mwh": 1.5 * seed,
            "curtailed_mwh": 12.25 + seed,
            "overload_steps": 3.0 * seed,
            "line_trips": 0.5 * seed,
            "max_cascade_size": seed,
            "survival_rate": 1.0 - 0.25 * seed,
            "mean_steps_survived": steps - steps // 6 * seed,
            "n1_secure_fraction": 0.97 - 0.1 * seed,
            "decisions_per_second": 4321.0 - seed,
            "generation_cost_per_hour": 120000.0 + 1000 * seed,
            "per_episode": {
                "operating_cost_per_hour": [123000.0 + 1000 * seed, 123912.0 + 1000 * seed],
                "energy_not_served_mwh": [0.0, 3.0 * seed],
                "curtailed_mwh": [12.0 + seed, 12.5 + seed],
                "overload_steps": [0.0, 6.0 * seed],
                "line_trips": [0, seed],
                "steps_survived": [steps, steps - steps // 3 * seed],
                "terminated": [False, seed > 0],
            },
            "trace": synthetic_trace(rng, steps, scale),
        }
    return {
        "format": FORMAT,
        "gridrl_version": "0.1.0",
        "policy": policy,
        "case": "ieee118",
        "physics": "dc",
        "episode_steps": steps,
        "step_minutes": 24 * 60 // steps,
        "seed": 0,
        "episodes": 2,
        "created": "2026-11-28T08:00:00Z",
        "machine": "synthetic test machine",
        "scenarios": runs,
    }


@pytest.fixture(scope="module")
def grid():
    return load("ieee118")


@pytest.fixture(scope="module")
def eval_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("evaluations")
    paths = []
    for seed, policy in enumerate(("sced", "ppo")):
        path = folder / f"{policy}.json"
        path.write_text(json.dumps(synthetic_evaluation(policy, ["normal", "peak_demand"], seed)))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def training_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("training") / "train.csv"
    path.write_text("step,return,entropy\n0,-120.5,1.2\n1000,-80.25,\n2000,-41.0,0.9\n")
    return path


@pytest.fixture(scope="module")
def report_path(eval_files, training_csv, grid, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert write_report(eval_files, out, training=training_csv, grid=grid) == out
    return out


@pytest.fixture(scope="module")
def report(report_path) -> str:
    return report_path.read_text()


def _images(document: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]*)"', document)


def _svg(uri: str) -> str:
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri[len(prefix) :]).decode()


def _row(document: str, scenario: str, label: str) -> str:
    """The table row `label` of the scenario's table."""
    section = document.split(f'<h2 id="{scenario.replace("_", "-")}">', 1)[1]
    table = section.split("</table>", 1)[0]
    return re.search(rf"<tr[^>]*><th>{re.escape(label)}</th>.*?</tr>", table).group(0)


def test_tables_hold_every_interface_key_with_its_numbers(report):
    normal = report.split('<h2 id="normal">', 1)[1].split("</table>", 1)[0]
    for label in (
        "operating cost ($/h)", "gap vs SCED", "energy not served (MWh)", "curtailed (MWh)",
        "overload branch-steps", "line trips", "max cascade (branches)", "survival",
        "steps survived", "N-1 secure share", "decisions / s",
    ):  # fmt: skip
        assert f"<th>{html.escape(label)}</th>" in normal
    assert len(INTERFACE_METRICS) == len(INTERFACE_KEYS) == 11
    cost = _row(report, "normal", "operating cost ($/h)")
    assert "123,456" in cost and "124,456" in cost  # sced, ppo
    assert "123,000 – 123,912" in cost  # the range over episodes
    assert "124,556" in _row(report, "peak_demand", "operating cost ($/h)")
    assert "+1.00 %" in _row(report, "normal", "gap vs SCED")
    assert "—" in _row(report, "peak_demand", "gap vs SCED")  # null: undefined, not zero
    assert "75.0 %" in _row(report, "normal", "survival")
    assert "4,320" in _row(report, "normal", "decisions / s")


def test_the_better_value_is_highlighted_where_better_is_clear(report):
    def best_cells(label: str) -> list[str]:
        return re.findall(r'<td class="num best">([^<]*)', _row(report, "normal", label))

    assert best_cells("operating cost ($/h)") == ["123,456"]  # lower is better
    assert best_cells("survival") == ["100.0 %"]  # higher is better
    assert best_cells("decisions / s") == ["4,321"]
    assert best_cells("generation cost ($/h)") == []  # an extra without a direction
    # SCED's gap is null in peak_demand: one known value is compared with nothing, so not marked
    gap = _row(report, "peak_demand", "gap vs SCED")
    assert "+1.00 %" in gap and "best" not in gap


def test_one_map_and_one_trace_per_policy_for_each_scenario(report, grid):
    assert report.count('class="map"') == 2
    assert report.count('type="radio"') == 4  # 2 scenarios x 2 policies
    maps = [_svg(m.group(1)) for m in re.finditer(r'class="map" [^>]*src="([^"]*)"', report)]
    # branch 7 is the most loaded of the synthetic worst moment: labelled on the map
    label = branch_labels(grid)[7]
    assert all(label in svg for svg in maps)


def test_the_report_is_self_contained(report):
    assert "<script" not in report and "<link" not in report
    links = re.findall(r'(?:src|href)="([^"]*)"', report)
    assert links and all(link.startswith(("data:", "#")) for link in links)
    images = _images(report)
    assert len(images) == 1 + 2 * 2 + 2 + 1  # bars, traces, maps, learning curves
    for uri in images:  # each figure is a well-formed SVG that fetches nothing
        svg = ElementTree.fromstring(_svg(uri))
        references = [
            value for element in svg.iter() for key, value in element.attrib.items()
            if key.endswith("href")
        ]  # fmt: skip
        assert all(ref.startswith(("#", "data:")) for ref in references)


def test_learning_curves_from_a_csv(report, training_csv):
    log = read_training_log(training_csv)
    np.testing.assert_array_equal(log["step"], [0, 1000, 2000])
    np.testing.assert_array_equal(log["return"], [-120.5, -80.25, -41.0])
    np.testing.assert_array_equal(log["entropy"], [1.2, np.nan, 0.9])  # empty cell: missing
    assert '<h2 id="training">' in report


def test_a_spreadsheet_csv_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("\ufeffstep, return\n5, 1.5\n", encoding="utf-8")
    np.testing.assert_array_equal(read_training_log(path)["return"], [1.5])


def test_learning_curves_from_json(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"step": [0, 10], "return": [1.5, 2.5], "loss": [None, 0.1]}))
    log = read_training_log(path)
    np.testing.assert_array_equal(log["return"], [1.5, 2.5])
    np.testing.assert_array_equal(log["loss"], [np.nan, 0.1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("step,loss\n0,1\n", "'return'"),
        ("step,return\n0,abc\n", "entry 1 of column 'return': 'abc' is not a number"),
        ("step,return\n0,\n", "every 'return' must be a number"),
        ("step,return\n", "no rows"),
        ("step,return\n0,1,2\n", "line 2 has 3 fields"),
    ],
)
def test_a_bad_training_log_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "train.csv"
    path.write_text(text)
    with pytest.raises(ReportError, match=re.escape(message)):
        read_training_log(path)


def _write(tmp_path: Path, name: str, document: dict | str) -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def _small() -> dict:
    return synthetic_evaluation("sced", ["normal"], steps=4)


def _broken(change) -> dict:
    document = _small()
    change(document)
    return document


def _run(document: dict) -> dict:
    return document["scenarios"]["normal"]


def _trace(document: dict) -> dict:
    return _run(document)["trace"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "gridrl-evaluation/1", "x": NaN}', "NaN is not a number"),
        ("[1, 2]", "not a JSON object"),
        (
            _broken(lambda d: d.update(format="gridrl-evaluation/2")),
            "expected 'gridrl-evaluation/1'",
        ),
        (_broken(lambda d: d.pop("format")), "format is None"),
        (_broken(lambda d: d.pop("case")), "lacks the key 'case'"),
        (_broken(lambda d: d.update(episode_steps="288")), "episode_steps must be a number"),
        (_broken(lambda d: _run(d).pop("survival_rate")), "lacks the key 'survival_rate'"),
        (_broken(lambda d: _run(d).update(line_trips="2")), "line_trips must be a number"),
        (_broken(lambda d: _trace(d)["wind_mw"].pop()), "trace.wind_mw has 3 values, not 4"),
        (
            _broken(lambda d: _trace(d)["worst"]["in_service"].pop()),
            "one true/false per branch",
        ),
        (_broken(lambda d: d.update(scenarios={})), "non-empty"),
    ],
)
def test_a_bad_evaluation_file_is_a_clear_error(tmp_path, document, message):
    path = _write(tmp_path, "bad.json", document)
    with pytest.raises(ReportError, match=re.escape(message)) as error:
        read_evaluation(path)
    assert str(path) in str(error.value)


def test_missing_files_and_mixed_cases_are_clear_errors(tmp_path, grid):
    with pytest.raises(ReportError, match="no such evaluation file"):
        write_report([tmp_path / "absent.json"], tmp_path / "r.html", grid=grid)
    other = _small() | {"case": "case14"}
    with pytest.raises(ReportError, match=r"different cases .*ieee118.*case14"):
        write_report([_small(), other], tmp_path / "r.html", grid=grid)
    with pytest.raises(ReportError, match="no such training log"):
        write_report([_small()], tmp_path / "r.html", training=tmp_path / "t.csv", grid=grid)
    short = _broken(lambda d: _trace(d)["worst"].update(loading=[0.5] * 10, in_service=[True] * 10))
    with pytest.raises(
        ReportError, match=re.escape("trace.worst has 10 branches, the case 'ieee118' has 186")
    ):
        write_report([short], tmp_path / "r.html", grid=grid)
    assert not (tmp_path / "r.html").exists()


def test_null_values_and_an_episode_that_ended_at_once(tmp_path, grid):
    """null (undefined) trace values leave gaps, never a NaN in the page; an empty trace (the
    runner's worst: null) is said, not drawn."""

    def leave_gaps(document: dict) -> None:
        _trace(document)["demand_mw"][1] = None
        _trace(document)["worst"]["loading"][3] = None

    gappy = _broken(leave_gaps)
    ended = synthetic_evaluation("do_nothing", ["normal"], steps=4)
    trace = ended["scenarios"]["normal"]["trace"]
    trace.update({key: [] for key in ("time_h", *TRACE_SERIES)})
    trace.update(top_branches={"index": [], "label": [], "loading": []}, worst=None)
    out = write_report([gappy, ended], tmp_path / "r.html", grid=grid)
    document = out.read_text()
    assert "No trace for this policy in this scenario." in document
    assert "do_nothing: no trace for this scenario" in _svg(
        re.search(r'class="map" [^>]*src="([^"]*)"', document).group(1)
    )
    assert "nan" not in re.sub(r'src="[^"]*"', "", document).lower()


def test_the_layout_is_deterministic(grid):
    first, second = network_layout(grid), network_layout(grid)
    assert first.shape == (grid.n_bus, 2) and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, second)
    assert np.ptp(first[:, 0]) >= np.ptp(first[:, 1])  # turned to lie along its longest extent


def test_cli_report(training_csv, tmp_path, capsys):
    out = tmp_path / "cli.html"
    evaluation = _write(tmp_path, "small.json", _small())
    args = ["report", str(evaluation), "--out", str(out), "--training", str(training_csv)]
    assert main(args) == 0
    assert out.is_file() and "written:" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "absent.json"), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().out


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed")
def test_the_report_renders_in_chromium(report_path, tmp_path):
    png = tmp_path / "report.png"
    subprocess.run(
        [sys.executable, str(SCREENSHOT), str(report_path), "--out", str(png), "--height", "3000"],
        check=True,
        timeout=180,
    )
    pixels = (mpimg.imread(png)[..., :3] * 255).round().astype(int)
    assert pixels.shape == (3000, 1400, 3)
    # the best cells' green and the bar chart's policy colours were painted, not a blank page
    highlighted = np.all(pixels == (0xD8, 0xF5, 0xD0), axis=-1)
    bars_blue = np.all(np.abs(pixels - (0x1F, 0x77, 0xB4)) <= 2, axis=-1)
    assert highlighted.sum() > 1000 and bars_blue.sum() > 1000
