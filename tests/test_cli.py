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
