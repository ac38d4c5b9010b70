"""The edges a careless or hostile user reaches (issue 16): every user error is one line and exit
status 2, checked before the long work; outputs are never lost or half-written; Ctrl-C ends with
one line and status 130, a previous output intact; env.step names a bad action's agent and shape.

Nothing here runs an evaluation, a training or a real power flow: the work is replaced by stubs
(the checks before it and the writes after it are the subject), so every test takes a second."""

import errno
import json
import string
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gridrl.io as gio
from gridrl.cli import main
from gridrl.evaluate import runner
from test_cases import VALID  # a small valid MATPOWER case

# --- helpers ----------------------------------------------------------------------------------


def run(argv: list[str]) -> int:
    """main's exit status, argparse's SystemExit included; any other exception propagates: a
    traceback is what these tests exist to rule out."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def one_line(capsys) -> str:
    """What the command printed, asserted to be one line."""
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


SUMMARY_KEYS = (  # the summary table's columns
    "operating_cost_per_hour",
    "cost_gap_vs_sced",
    "energy_not_served_mwh",
    "curtailed_mwh",
    "overload_steps",
    "line_trips",
    "max_cascade_size",
    "survival_rate",
    "mean_steps_survived",
    "n1_secure_fraction",
    "decisions_per_second",
)


def fake_document(policy, **options) -> dict:
    """A minimal evaluation document (what the summary table and the JSON need)."""
    return {
        "policy": policy.name,
        "case": "ieee118",
        "physics": options["physics"],
        "episodes": options["episodes"],
        "episode_steps": options["episode_steps"],
        "seed": options["seed"],
        "scenarios": {"normal": dict.fromkeys(SUMMARY_KEYS)},
    }


@pytest.fixture
def no_evaluation(monkeypatch):
    """runner.evaluate replaced by a stub that records its calls and returns a small document;
    compiled programs kept (releasing them would make later tests compile again)."""
    calls = []

    def stub(policy, scenarios="all", **options):
        calls.append(policy.name)
        return fake_document(policy, **options)

    monkeypatch.setattr(runner, "evaluate", stub)
    monkeypatch.setattr(runner, "release_compiled", lambda: None)
    return calls


def _case(tmp_path: Path, old: str, new: str, name: str = "case.m") -> Path:
    assert old in VALID
    path = tmp_path / name
    path.write_text(VALID.replace(old, new, 1))
    return path


EVALUATE = ["evaluate", "--scenario", "normal", "--episodes", "1", "--episode-steps", "1"]


# --- every user error: one line, status 2 -----------------------------------------------------


@pytest.mark.parametrize(
    ("top", "message"), [("-3", "must be at least 1, got -3"), ("0", "got 0"), ("x", "not an int")]
)
def test_powerflow_top_is_range_checked(capsys, top, message):
    assert run(["powerflow", "--top", top]) == 2
    line = one_line(capsys)
    assert line.startswith("gridrl powerflow: error: argument --top:") and message in line


def test_powerflow_refuses_a_zero_impedance_branch_naming_the_line(tmp_path, capsys):
    case = _case(tmp_path, "2  3  0.01  0.1  0  0", "2  3  0  0  0  0")
    assert run(["powerflow", "--case", str(case)]) == 2
    line = one_line(capsys)
    assert line.startswith(f"error: {case}, line 21: matrix 'branch', row 3: branch 2-3 has zero")


def test_powerflow_refuses_an_infinite_load_naming_the_line(tmp_path, capsys):
    case = _case(tmp_path, "2  1  50  10", "2  1  Inf  10")
    assert run(["powerflow", "--case", str(case)]) == 2
    assert "line 7: matrix 'bus', row 2, column 3: inf is not a finite number" in one_line(capsys)


def test_powerflow_marks_an_unconverged_ac_flow(tmp_path, capsys, monkeypatch):
    """The AC figures of a failed solve are garbage: marked, never printed as results."""
    import gridrl.physics as physics

    case = _case(tmp_path, "2  1  50  10", "2  1  5000  1000")
    n = 3
    dc = types.SimpleNamespace(pf=np.array([3315.5, 1699.5, 10.0]))
    garbage = np.full(n, 1e9)  # what a diverged iteration leaves
    ac = types.SimpleNamespace(
        converged=False, iterations=50, pf=garbage, pt=garbage, apparent_mva=garbage,
        vm=garbage, energized=np.ones(n, bool),
    )  # fmt: skip
    monkeypatch.setattr(physics, "dc_power_flow", lambda grid: dc)
    monkeypatch.setattr(physics, "ac_power_flow", lambda grid: ac)
    monkeypatch.setenv("COLUMNS", "200")
    assert run(["powerflow", "--case", str(case), "--top", "2"]) == 1
    out = capsys.readouterr().out
    assert "1e+09" not in out and "1,000,000,000" not in out
    ac_row = next(line for line in out.splitlines() if "NO" in line)  # the AC row of the timing
    assert ac_row.split("│")[1].strip() == "AC" and ac_row.count("unconverged") == 2
    assert out.count("unconverged") == 2 + 2 * 2  # and both AC columns of both branches
    assert "3,315.5" in out  # DC still reported
    assert "the AC power flow did not converge in 50 iterations" in out


@pytest.mark.parametrize(
    ("seed", "shown"),
    [("-1", "-1"), (str(2**32 + 3), str(2**32 + 3)), (str(2**63), str(2**63))],
)
def test_evaluate_seed_range(capsys, no_evaluation, seed, shown):
    """Seeds are 0 <= seed < 2^32: 2^32 + 3 would replay seed 3 under another name."""
    assert run([*EVALUATE, "--policy", "do_nothing", "--seed", seed]) == 2
    assert one_line(capsys) == f"error: seed must be in [0, 2^32), got {shown}"
    assert no_evaluation == []


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--episode-steps", "0", "episode_steps must be in [1, 105408]"),
        ("--episode-steps", str(10**12), "episode_steps must be in [1, 105408]"),
        ("--episodes", "1001", "episodes must be in [1, 1000]"),
        ("--physics", "quantum", "physics must be one of"),
        ("--episodes", "many", "argument --episodes: invalid int value: 'many'"),
    ],
)
def test_evaluate_numbers_checked_before_any_policy_runs(
    capsys, no_evaluation, option, value, message
):
    assert run([*EVALUATE, "--policy", "do_nothing,sced", option, value]) == 2
    assert message in one_line(capsys)
    assert no_evaluation == []


def test_evaluate_policy_list_checked_as_a_whole(capsys, no_evaluation):
    for policies, message in [
        ("do_nothing,foo", "unknown policy 'foo'"),
        ("", "empty policy name"),
        (" , ", "empty policy name"),
    ]:
        assert run([*EVALUATE, "--policy", policies]) == 2
        assert message in one_line(capsys)
    assert no_evaluation == []


def test_train_errors_are_one_line(tmp_path, capsys):
    cases = [
        ([], "give --out RUN_DIR for a new run, or --resume RUN_DIR"),
        (["--out", str(tmp_path / "r"), "--set", "lr"], "--set expects field=value"),
        (["--out", str(tmp_path / "r"), "--seed", str(2**63)], "seeds in [0, 2^31)"),
        (["--out", str(tmp_path / "r"), "--total-steps", "-3"], "total_steps must be >= 1"),
        (["--out", str(tmp_path / "r"), "--total-steps", "1e30"], "invalid int value: '1e30'"),
        (["--out", str(tmp_path / "r"), "--total-steps", str(10**30)], "total_steps too large"),
        (["--out", str(tmp_path / "r"), "--preset", "huge"], "unknown preset 'huge'"),
    ]
    for argv, message in cases:
        assert run(["train", *argv]) == 2
        assert message in one_line(capsys)
    assert not (tmp_path / "r").exists()


def test_an_internal_bug_keeps_its_traceback(monkeypatch):
    """Only the user's errors are turned into one line: a bug must show where it is."""

    def bug(policy, scenarios="all", **options):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(runner, "evaluate", bug)
    with pytest.raises(ZeroDivisionError):
        main([*EVALUATE, "--policy", "do_nothing"])


# --- output paths checked before the work ------------------------------------------------------


def test_evaluate_output_paths_checked_before_running(tmp_path, capsys, no_evaluation):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        ("do_nothing", tmp_path, "is an existing folder, not a file"),
        ("do_nothing", blocker / "eval.json", f"{blocker} is a file, not a folder"),
        ("do_nothing,sced", tmp_path / "eval.json", "with several policies it needs a {policy}"),
    ]
    for policies, out, message in cases:
        assert run([*EVALUATE, "--policy", policies, "--json", str(out)]) == 2
        assert message in one_line(capsys)
    assert no_evaluation == []


def test_evaluate_never_writes_over_the_files_of_the_run_it_evaluates(
    tmp_path, capsys, no_evaluation
):
    import shutil

    from gridrl.agents.trained import pretrained_path

    run_dir = tmp_path / "run"
    shutil.copytree(pretrained_path(), run_dir)
    (meta,) = run_dir.glob("checkpoints/*/meta.json")
    before = meta.read_bytes()
    for out in (meta, run_dir / "config.json", run_dir / "metrics.jsonl"):
        assert run([*EVALUATE, "--policy", str(run_dir), "--json", str(out)]) == 2
        assert f"{out}: the JSON would overwrite the input" in one_line(capsys)
    assert meta.read_bytes() == before
    assert no_evaluation == []


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.EROFS, "Read-only file system"),
    ],
)
def test_evaluate_refuses_a_read_only_folder_before_running(
    tmp_path, capsys, no_evaluation, monkeypatch, error
):
    """A read-only folder (mocked: the tests may run as root, which writes anywhere)."""

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(gio.tempfile, "mkstemp", refuse)
    out = tmp_path / "results" / "eval.json"
    assert run([*EVALUATE, "--policy", "do_nothing", "--json", str(out)]) == 2
    line = one_line(capsys)
    assert line.startswith(f"error: {out}: the folder") and error.strerror in line
    assert no_evaluation == []


def test_report_refuses_to_overwrite_its_input(tmp_path, capsys):
    source = tmp_path / "v.json"
    source.write_text('{"not": "an evaluation"}')
    for out in (source, tmp_path / "." / "v.json"):
        assert run(["report", str(source), "--out", str(out)]) == 2
        assert "the report would overwrite the input" in one_line(capsys)
    training = tmp_path / "curve.csv"
    training.write_text("step,return\n1,2\n")
    assert run(["report", str(source), "--training", str(training), "--out", str(training)]) == 2
    assert f"would overwrite the input {training}" in one_line(capsys)
    assert source.read_text() == '{"not": "an evaluation"}'
    assert training.read_text() == "step,return\n1,2\n"


def test_report_output_path_checked(tmp_path, capsys):
    source = tmp_path / "v.json"
    source.write_text("{}")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out, message in [(tmp_path, "existing folder"), (blocker / "r.html", "is a file")]:
        assert run(["report", str(source), "--out", str(out)]) == 2
        assert message in one_line(capsys)


# --- outputs never lost or half-written --------------------------------------------------------


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_keeps_the_previous_evaluation(tmp_path, capsys, no_evaluation, monkeypatch):
    out = tmp_path / "eval.json"
    out.write_text('{"previous": true}\n')
    monkeypatch.setattr(gio.os, "fsync", _disk_full)  # the data never reaches the disk
    assert run([*EVALUATE, "--policy", "do_nothing", "--json", str(out)]) == 2
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == f"error: {out}: No space left on device (the file is unchanged)"
    assert json.loads(out.read_text()) == {"previous": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]  # no temporary left


def test_a_full_disk_keeps_the_previous_report(tmp_path, capsys, monkeypatch):
    import gridrl.evaluate.report as report

    out = tmp_path / "report.html"
    out.write_text("<p>previous</p>")
    monkeypatch.setattr(
        report, "write_report", lambda e, o, training: gio.atomic_write_text(o, "x")
    )
    monkeypatch.setattr(gio.os, "replace", _disk_full)
    assert run(["report", str(tmp_path / "v.json"), "--out", str(out)]) == 2
    assert one_line(capsys) == f"error: {out}: No space left on device (the file is unchanged)"
    assert out.read_text() == "<p>previous</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


# --- Ctrl-C: one line, status 130, the previous output intact ---------------------------------


def test_an_interrupted_evaluation_keeps_what_it_wrote(tmp_path, capsys, monkeypatch):
    (tmp_path / "sced.json").write_text('{"previous": true}\n')
    ran = []

    def stub(policy, scenarios="all", **options):
        ran.append(policy.name)
        if policy.name == "sced":
            raise KeyboardInterrupt
        return fake_document(policy, **options)

    monkeypatch.setattr(runner, "evaluate", stub)
    monkeypatch.setattr(runner, "release_compiled", lambda: None)
    template = str(tmp_path / "{policy}.json")
    assert run([*EVALUATE, "--policy", "do_nothing,sced", "--json", template]) == 130
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        f"interrupted: evaluation of sced stopped; kept: {tmp_path / 'do_nothing.json'}; "
        f"{tmp_path / 'sced.json'} not written (a previous one is unchanged)"
    )
    assert ran == ["do_nothing", "sced"]
    assert json.loads((tmp_path / "do_nothing.json").read_text())["policy"] == "do_nothing"
    assert json.loads((tmp_path / "sced.json").read_text()) == {"previous": True}


def test_an_interrupted_write_leaves_the_previous_file(
    tmp_path, capsys, no_evaluation, monkeypatch
):
    out = tmp_path / "eval.json"
    out.write_text('{"previous": true}\n')

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(gio.os, "fsync", interrupt)  # Ctrl-C in the middle of the write
    assert run([*EVALUATE, "--policy", "do_nothing", "--json", str(out)]) == 130
    assert (
        capsys.readouterr()
        .out.strip()
        .splitlines()[-1]
        .startswith("interrupted: evaluation of do_nothing stopped; no file written;")
    )
    assert json.loads(out.read_text()) == {"previous": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]


def test_an_interrupted_report_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    import gridrl.evaluate.report as report

    out = tmp_path / "report.html"
    out.write_text("<p>previous</p>")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", interrupt)
    assert run(["report", str(tmp_path / "v.json"), "--out", str(out)]) == 130
    assert one_line(capsys) == (f"interrupted: report not written; a previous {out} is unchanged")
    assert out.read_text() == "<p>previous</p>"


def test_an_interrupted_training_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import gridrl.train.run as train_run

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_run, "train_run", interrupt)
    assert run(["train", "--out", str(tmp_path / "run")]) == 130
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == (
        f"interrupted: {tmp_path / 'run'} keeps its last checkpoint; "
        f"continue with `gridrl train --resume {tmp_path / 'run'}`"
    )


def test_an_interrupted_powerflow(capsys, monkeypatch):
    import gridrl.cases as cases

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cases, "load", interrupt)
    assert run(["powerflow"]) == 130
    assert one_line(capsys) == "interrupted: gridrl powerflow stopped; nothing written"


# --- env.step: a bad action names its agent and shape, at trace time ----------------------------


def test_step_names_the_agent_and_shapes_of_a_bad_action(normal_env):
    """Checked while tracing (eval_shape: nothing compiled or run), so free under jit."""
    env = normal_env
    key = jax.random.key(0)
    _, state = jax.eval_shape(env.reset, key, env.default_params)
    actions = {a: jnp.zeros(env.action_space(a).shape) for a in env.agents}

    def step(given):
        return jax.eval_shape(env.step, key, state, given, env.default_params)

    step(actions)  # the right actions trace
    size = env.action_space("safety").shape[0]
    with pytest.raises(ValueError, match=r"missing: \['safety'\], unknown: \[\]"):
        step({a: v for a, v in actions.items() if a != "safety"})
    with pytest.raises(ValueError, match=r"missing: \[\], unknown: \['intruder'\]"):
        step(actions | {"intruder": jnp.zeros(1)})
    expected = rf"the action of 'safety' has shape \(3,\), expected \({size},\)"
    with pytest.raises(ValueError, match=expected):
        step(actions | {"safety": jnp.zeros(3)})
    with pytest.raises(ValueError, match=rf"has shape \(1, {size}\), expected"):
        step(actions | {"safety": jnp.zeros((1, size))})
    batched = jax.vmap(env.step, in_axes=(None, None, 0, None))  # the check sees one sample
    with pytest.raises(ValueError, match=r"'safety' has shape \(3,\)"):
        jax.eval_shape(
            batched,
            key,
            state,
            {a: v[None] for a, v in actions.items()} | {"safety": jnp.zeros((1, 3))},
            env.default_params,
        )


# --- property-based: random command lines, status 0 or 2, never a traceback --------------------

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "1", "-1", "1e3", "", "x", "3.5", str(2**32), str(2**64)]),
)
SMALL = st.one_of(st.just("1"), st.just("2"), NUMBERS)  # often valid: the run reaches the stub
JUNK = st.text(string.ascii_letters + string.digits + ",._-/ ", max_size=12)


def _options(pairs: dict[str, st.SearchStrategy]) -> st.SearchStrategy[list[str]]:
    """Any subset of the options, each with a value from its strategy, in random order."""
    chosen = st.fixed_dictionaries({}, optional=pairs)
    return chosen.flatmap(
        lambda d: st.permutations([[k, v] for k, v in d.items()]).map(
            lambda items: [x for item in items for x in item]
        )
    )


def _check(status: int, capsys) -> None:
    event(f"exit status {status}")  # --hypothesis-show-statistics: both kinds of run reached
    assert status in (0, 2)
    if status == 2:
        one_line(capsys)
    else:
        capsys.readouterr()


@PROPERTY
@given(
    policy=st.one_of(
        st.sampled_from(["do_nothing", "sced", "do_nothing,sced"]),
        st.lists(st.sampled_from(["do_nothing", "sced", "foo", "", " "]), max_size=3).map(",".join),
        JUNK,
    ),
    argv=_options(
        {
            "--scenario": st.sampled_from(["normal", "all", "calm", "", "normal,,peak_demand"]),
            "--episodes": SMALL,
            "--seed": SMALL,
            "--episode-steps": SMALL,
            "--physics": st.sampled_from(["dc", "ac", "DC", ""]),
            "--json": st.sampled_from(["{policy}.json", "out.json", "", "file/x.json", "."]),
        }
    ),
)
def test_random_evaluate_command_lines(policy, argv, tmp_path, capsys, monkeypatch, no_evaluation):
    (tmp_path / "file").write_text("x")
    monkeypatch.chdir(tmp_path)
    _check(run(["evaluate", "--policy", policy, *argv]), capsys)


@PROPERTY
@given(
    argv=_options(
        {
            "--top": NUMBERS,
            "--case": st.sampled_from(["no_such_case", "bad.m", "zero.m", "inf.m", "", "x.m"]),
        }
    )
)
def test_random_powerflow_command_lines(argv, tmp_path, capsys, monkeypatch):
    """Only cases that fail to load: a good one would run the (tested elsewhere) power flow."""
    _case(tmp_path, "2  3  0.01  0.1", "2  3  0  0", "zero.m")
    _case(tmp_path, "2  1  50", "2  1  -Inf", "inf.m")
    _case(tmp_path, "mpc.bus = [", "mpc.buses = [", "bad.m")
    monkeypatch.chdir(tmp_path)
    if "--case" not in argv:
        argv = [*argv, "--case", "no_such_case"]
    _check(run(["powerflow", *argv]), capsys)


@PROPERTY
@given(
    argv=_options(
        {
            "--out": st.sampled_from(["r.html", "in.json", ".", "file/r.html", "sub/r.html"]),
            "--training": st.sampled_from(["in.json", "absent.csv", "curve.csv", "."]),
        }
    ),
    inputs=st.lists(st.sampled_from(["in.json", "absent.json", "empty_run", "."]), max_size=2),
)
def test_random_report_command_lines(argv, inputs, tmp_path, capsys, monkeypatch):
    """Only inputs that fail to read: a good one would render a report (tested elsewhere)."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "in.json").write_text('{"format": "something else"}')
    (tmp_path / "curve.csv").write_text("step,return\n1,2\n")
    (tmp_path / "empty_run").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    _check(run(["report", *inputs, *argv]), capsys)
    assert (tmp_path / "in.json").read_text() == '{"format": "something else"}'


@PROPERTY
@given(
    argv=_options(
        {
            "--total-steps": NUMBERS,
            "--seed": NUMBERS,
            "--preset": st.sampled_from(["quick", "default", "huge", ""]),
            "--scenario": st.sampled_from(["normal", "mix", "calm", ""]),
            "--algorithm": st.sampled_from(["ppo", "mappo", "sgd", ""]),
            "--set": st.sampled_from(["lr=0.1", "lr", "lr=-1", "nope=1", "=3", "gamma_safety=2"]),
        }
    )
)
def test_random_train_command_lines(argv, tmp_path, capsys, monkeypatch):
    import gridrl.train.run as train_run

    done = types.SimpleNamespace(updates=1, env_steps=1, seconds=1.0, evaluation=None)
    monkeypatch.setattr(train_run, "train_run", lambda *args, **kwargs: done)
    _check(run(["train", "--out", str(tmp_path / "run"), *argv]), capsys)
