"""gridrl.io: atomic writes keep the previous file on failure and leave no temporary files;
output paths are checked, with one-line errors naming the path, before any long work."""

import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path

import pytest

from gridrl import io as gio
from gridrl.io import (
    OutputError,
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    check_output_path,
    write_json,
)


def _no_full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _permission_denied(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


# ---- atomic writes -------------------------------------------------------------------------------


def test_write_json_round_trip_and_format(tmp_path):
    path = write_json(tmp_path / "a" / "b" / "out.json", {"x": [1, 2.5], "y": "é"})
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"x": [1, 2.5], "y": "é"}
    assert text.endswith("}\n")
    assert text.startswith('{\n "x"')  # indent=1
    assert os.listdir(path.parent) == ["out.json"]


def test_write_json_refuses_nan_and_keeps_previous_file(tmp_path):
    path = write_json(tmp_path / "out.json", {"v": 1})
    with pytest.raises(ValueError, match="JSON compliant"):
        write_json(path, {"v": float("nan")})
    assert json.loads(path.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_replace_failure_keeps_previous_file_and_no_temp(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "report.html", "old")
    monkeypatch.setattr(gio.os, "replace", _no_full_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.html"]


def test_failure_midway_through_the_data_keeps_previous_file(tmp_path, monkeypatch):
    """The disk fills up while writing: the partial temporary file is removed."""
    path = atomic_write_bytes(tmp_path / "data.bin", b"previous")
    monkeypatch.setattr(gio.os, "fsync", _no_full_disk)
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(path, b"x" * 100_000)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["data.bin"]


def test_replaced_file_keeps_its_mode_and_a_new_one_is_not_private(tmp_path):
    """mkstemp makes 0o600 files; the output must get the mode a plain open() would give."""
    fresh = atomic_write_text(tmp_path / "fresh.txt", "a")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    os.chmod(fresh, 0o640)
    atomic_write_text(fresh, "b")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    assert fresh.read_text() == "b"


def test_the_evaluation_writers_are_atomic(tmp_path, monkeypatch):
    """runner.write_json goes through gridrl.io: a failed write keeps the previous file."""
    from gridrl.evaluate.runner import write_json as write_evaluation

    path = write_evaluation({"a": 1}, tmp_path / "eval.json")
    with pytest.raises(ValueError):
        write_evaluation({"a": float("inf")}, path)
    monkeypatch.setattr(gio.os, "replace", _no_full_disk)
    with pytest.raises(OSError):
        write_evaluation({"a": 2}, path)
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["eval.json"]


# ---- check_output_path / check_output_dir ------------------------------------------------------


def test_check_output_path_accepts_and_creates_the_folder(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.json"
    assert check_output_path(target) == target
    assert target.parent.is_dir()
    assert os.listdir(target.parent) == []  # the write probe is gone
    assert not target.exists()


def test_check_output_path_refuses_a_directory(tmp_path):
    with pytest.raises(OutputError, match=rf"^{re.escape(str(tmp_path))}: .*existing folder"):
        check_output_path(tmp_path)


def test_check_output_path_refuses_a_file_as_parent(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=f"{re.escape(str(blocker))} is a file"):
        check_output_path(blocker / "sub" / "out.json")
    assert blocker.read_text() == "not a folder"


def test_check_output_path_refuses_an_input(tmp_path, monkeypatch):
    source = tmp_path / "eval.json"
    source.write_text("{}")
    with pytest.raises(OutputError, match="would overwrite the input"):
        check_output_path(source, inputs=[tmp_path / "other.json", source])
    # the same file under another name: relative, through a symlink, through a hard link
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="overwrite"):
        check_output_path("eval.json", inputs=[source])
    (tmp_path / "link.json").symlink_to(source)
    with pytest.raises(OutputError, match="overwrite"):
        check_output_path(tmp_path / "link.json", inputs=[source])
    os.link(source, tmp_path / "hard.json")
    with pytest.raises(OutputError, match="overwrite"):
        check_output_path(tmp_path / "hard.json", inputs=[source])
    assert check_output_path(tmp_path / "report.html", inputs=[source]).name == "report.html"


def test_check_output_path_unwritable_folder_mocked(tmp_path, monkeypatch):
    """Runs everywhere, root included: the write probe fails as on a read-only folder."""
    monkeypatch.setattr(tempfile, "mkstemp", _permission_denied)
    with pytest.raises(OutputError, match=r"not writable.*Permission denied") as caught:
        check_output_path(tmp_path / "out.json")
    assert str(tmp_path / "out.json") in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(OutputError, match="not writable"):
        check_output_dir(tmp_path / "run")


def test_check_output_path_folder_cannot_be_created_mocked(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "mkdir", _permission_denied)
    with pytest.raises(OutputError, match="cannot create the folder"):
        check_output_path(tmp_path / "sub" / "out.json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o555 folder regardless")
def test_check_output_path_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output_path(folder / "out.json")
        with pytest.raises(OutputError, match="cannot create the folder"):
            check_output_path(folder / "sub" / "out.json")
    finally:
        folder.chmod(0o755)


def test_check_output_dir(tmp_path):
    run = check_output_dir(tmp_path / "runs" / "a")
    assert run.is_dir()
    assert os.listdir(run) == []
    assert check_output_dir(run) == run  # an existing folder is fine (a resumed run)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="existing file"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file" / "run")
