"""The `gridrl` command: the main job of `make run` and its error handling."""

from gridrl.cli import main


def test_powerflow_summarises_the_builtin_case(capsys):
    assert main(["powerflow", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "ieee118: 118 buses" in out
    assert "The 3 most loaded branches" in out
    assert "AC loading" in out


def test_unknown_case_is_a_clear_error(capsys):
    assert main(["powerflow", "--case", "no_such_case"]) == 2
    assert "error:" in capsys.readouterr().out


def test_evaluate_checks_every_policy_before_running_any(tmp_path, capsys):
    """A bad name anywhere in --policy: one line, status 2, nothing run or written."""
    out = tmp_path / "{policy}.json"
    argv = ["evaluate", "--scenario", "normal", "--episode-steps", "2", "--json", str(out)]
    assert main([*argv, "--policy", "do_nothing,foo,sced"]) == 2
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("error: unknown policy 'foo'")
    assert len(printed.splitlines()) == 1  # no table: do_nothing did not run
    for empty in ("", ",", "do_nothing,,sced"):
        assert main([*argv, "--policy", empty]) == 2
        assert "empty policy name" in capsys.readouterr().out
    assert main([*argv, "--policy", "sced,sced"]) == 2
    assert "policy 'sced' given twice" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
