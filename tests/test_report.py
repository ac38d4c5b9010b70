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
from types import SimpleNamespace
from xml.etree import ElementTree

import matplotlib.image as mpimg
import numpy as np
import pytest

from gridrl.cases import load
from gridrl.cli import main
from gridrl.evaluate import ReportError, read_evaluation, read_training_log, write_report
from gridrl.evaluate.figures import attention_figure, learning_curves_figure, mean_attention
from gridrl.evaluate.network_map import branch_labels, network_layout
from gridrl.evaluate.report import read_run, run_panels
from gridrl.evaluate.schema import FORMAT, INTERFACE_KEYS, INTERFACE_METRICS, TRACE_SERIES

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


# ---- training run folders ------------------------------------------------------------------------

AGENTS = ("strategic", "operational_0", "operational_1", "operational_2", "operational_3", "safety")


def _metrics_rows(updates: int = 6, batch: int = 1024) -> list[dict]:
    """metrics.jsonl rows as gridrl train writes them: one per update (the return null where no
    episode ended), and an evaluation row of its own every 3 updates."""
    rows = []
    for update in range(1, updates + 1):
        step = update * batch
        rows.append({
            "step": step, "policy_loss": 0.01 / update, "value_loss": 5.0 / update,
            "entropy": 1.5 - 0.1 * update, "approx_kl": 0.004, "clip_fraction": 0.12,
            "explained_variance": 1 - 1 / update,
            "return/strategic": -90.0 + 10 * update if update % 2 == 0 else None,
            "return/operational_0": None, "reward/strategic": -0.5,
            "operating_cost": 118000.0 - update, "energy_not_served_mw": 2.0 / update,
        })  # fmt: skip
        if update % 3 == 0:
            rows.append({"step": step, "eval/normal/operating_cost_per_hour": 121000.0 - update,
                         "eval/normal/survival_rate": 0.5 + 0.1 * update})  # fmt: skip
    return rows


def _run_folder(root: Path, algorithm: str, evaluation: dict | None = None) -> Path:
    run = root / f"{algorithm}-run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _metrics_rows()))
    config = {"algorithm": algorithm, "case": "ieee118", "scenario": "normal", "physics": "dc",
              "total_steps": 6144, "seed": 1}  # fmt: skip
    (run / "config.json").write_text(json.dumps(config))
    if evaluation is not None:
        (run / "evaluation.json").write_text(json.dumps(evaluation))
    return run


def _image(document: str, alt: str) -> str:
    return _svg(re.search(rf'<img alt="{re.escape(alt)}" src="([^"]*)"', document).group(1))


def test_a_run_folder_gives_its_learning_curves_and_evaluation(tmp_path, grid):
    run = _run_folder(tmp_path, "mappo", synthetic_evaluation("update-6", ["normal"], steps=4))
    other = _write(tmp_path, "sced.json", _small())
    document = write_report([run, other], tmp_path / "run.html", grid=grid).read_text()
    # the run's evaluation.json joins the tables, named after the run
    head = document.split('<h2 id="normal">', 1)[1].split("</tr>", 1)[0]
    assert "<th>mappo-run (update-6)</th>" in head and "<th>sced</th>" in head
    assert "123,456" in _row(document, "normal", "operating cost ($/h)")
    # its learning curves: the global return, the learner's diagnostics and the held-out points
    assert "<h3>Run mappo-run</h3>" in document and "logged up to 6,144 env-steps" in document
    curves = _image(document, "learning curves of mappo-run")
    for title in (
        "mean episode return (strategic: the global reward)",
        "policy loss",
        "value loss",
        "entropy",
        "approx. KL / clip fraction",
        "explained variance",
        "operating cost ($/h, rollout mean)",
        "energy not served (MW, rollout mean)",
        "held-out: operating cost ($/h)",
        "held-out: survival rate (0–1)",
        "env-steps",
    ):
        assert html.escape(title) in curves, title  # fmt: skip
    assert "held-out: overload" not in curves  # not in the log: no empty panel
    assert "No attention: the algorithm mappo has no attention layer." in document
    links = re.findall(r'(?:src|href)="([^"]*)"', document)
    assert all(link.startswith(("data:", "#")) for link in links)


def test_run_curves_keep_the_gaps_of_the_log(tmp_path):
    run = read_run(_run_folder(tmp_path, "mappo"), attention=False)
    curves = run.curves
    assert len(curves["step"]) == 6 + 2  # the updates and the two evaluation rows
    returns = curves["return/strategic"]
    np.testing.assert_array_equal(returns[np.isfinite(returns)], [-70.0, -50.0, -30.0])
    held_out = curves["eval/normal/operating_cost_per_hour"]
    np.testing.assert_array_equal(curves["step"][np.isfinite(held_out)], [3072, 6144])
    panels = [panel.title for panel in run_panels(curves)]
    assert panels[0] == "mean episode return (strategic: the global reward)"
    assert "held-out: survival rate (0–1)" in panels and run.evaluation is None
    # a log in which no episode has ended yet: the return panel says so
    empty = curves | {"return/strategic": np.full(len(curves["step"]), np.nan)}
    svg = _svg(learning_curves_figure(empty, run_panels(empty)[:1], "env-steps"))
    assert ">no values yet<" in svg


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not a training run folder (no metrics.jsonl)"),
        ('{"step": 1, "return/strategic": 1.0}\n{"step": 2,\n', "line 2: not valid JSON"),
        ('{"step": 1, "policy_loss": 0.5}\n', "needs a 'return/strategic' column"),
        ('{"step": 1, "return/strategic": "high"}\n', "'high' is not a number"),
    ],
)
def test_a_bad_run_folder_is_a_one_line_error(tmp_path, capsys, content, message):
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "metrics.jsonl").write_text(content)
    with pytest.raises(ReportError, match=re.escape(message)) as error:
        write_report([run], tmp_path / "r.html")
    assert str(run) in str(error.value) and "\n" not in str(error.value)
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 2
    printed = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert printed.startswith("error:") and message in printed
    assert not (tmp_path / "r.html").exists()


def _synthetic_attention(steps: int, focus: float) -> np.ndarray:
    """[steps, 8 heads, 6, 6] softmax rows: uniform, plus `focus` on each agent itself."""
    logits = np.zeros((steps, 8, 6, 6)) + focus * np.eye(6)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def test_the_attention_heatmaps(tmp_path):
    traces = {
        "normal": _synthetic_attention(96, 0.0),
        "emergency_response": _synthetic_attention(96, 50.0),
    }
    np.testing.assert_allclose(mean_attention(traces["normal"]), np.full((6, 6), 1 / 6))
    svg = _svg(attention_figure(traces, AGENTS))
    for text in (*AGENTS, "normal", "emergency_response − normal", "attending agent"):
        assert f">{text}<" in svg, text
    assert svg.count(">0.17<") == 36 and svg.count(">1.00<") == 6  # uniform; self-attention
    assert svg.count(">0.83<") == 6  # the difference's diagonal: 1 - 1/6
    with pytest.raises(ReportError, match=r"\[steps, heads, n, n\], not \(96, 6, 6\)"):
        attention_figure({"normal": np.zeros((96, 6, 6))}, AGENTS)
    with pytest.raises(ReportError, match="6 agents, but 5 are named"):
        attention_figure({"normal": traces["normal"]}, AGENTS[:5])


def test_an_hmappo_run_gets_attention_of_its_latest_checkpoint(tmp_path, monkeypatch, capsys):
    """The glue, with the checkpoint and the episode replaced: which episodes are traced, and
    that their heatmap and caption reach the page."""
    import gridrl.agents.trained as trained
    import gridrl.evaluate.runner as runner

    run = _run_folder(tmp_path, "hmappo")
    (run / "checkpoints" / "6" / "state").mkdir(parents=True)  # complete: meta.json and state/
    (run / "checkpoints" / "6" / "meta.json").write_text("{}")
    asked = []

    class Env:
        agents = AGENTS

        def __init__(self, *args):
            self.args = args

    def trace(policy, env, key, steps):
        asked.append((policy.name, env.args, steps))
        return _synthetic_attention(steps, 50.0 if env.args[1] == "emergency_response" else 0.0)

    def load_policy(path):
        return SimpleNamespace(name=f"{Path(path).name}@6")

    monkeypatch.setattr(trained, "load_policy", load_policy)
    monkeypatch.setattr(trained, "attention_trace", trace)
    monkeypatch.setattr(runner, "environment", Env)
    out = tmp_path / "attention.html"
    assert main(["report", str(run), "--out", str(out)]) == 0  # no evaluation yet: runs only
    assert "written:" in capsys.readouterr().out
    assert asked == [
        ("hmappo-run@6", ("ieee118", "normal", "dc", 96), 96),
        ("hmappo-run@6", ("ieee118", "emergency_response", "dc", 96), 96),
    ]
    document = out.read_text()
    assert "<h1>gridrl training: hmappo-run</h1>" in document
    caption = document.split('<img alt="attention weights of hmappo-run"', 1)[1]
    assert "latest checkpoint (hmappo-run@6)" in caption
    assert "the 96 steps of one DC episode of each of normal and emergency_response" in caption
    svg = _image(document, "attention weights of hmappo-run")
    assert ">operational_3<" in svg and svg.count(">1.00<") == 6
    assert "learning curves of hmappo-run" in document


def test_an_hmappo_run_without_a_checkpoint_says_so(tmp_path):
    run = read_run(_run_folder(tmp_path, "hmappo"))
    assert run.attention is None
    assert run.attention_note == "No attention yet: the run has no complete checkpoint."
