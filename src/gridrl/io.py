"""Output files that are never lost or half-written, and output paths checked before long work.

Every write goes to a temporary file in the target's own folder (so the final rename never
crosses file systems), is flushed to disk, then renamed onto the target with `os.replace`,
which is atomic on POSIX and Windows: a reader sees the old file or the new one, never a mix.
If anything fails on the way the temporary file is removed and the old target is untouched.

    check_output_path("results/eval.json", inputs=["results/eval.json.in"])  # before the work
    write_json("results/eval.json", document)                                # after it
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "OutputError",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_dir",
    "check_output_path",
    "fsync_dir",
    "write_json",
]

StrPath = str | os.PathLike[str]


class OutputError(ValueError):
    """An output path that cannot be written; the message names the path and the reason."""


# ---- atomic writes -------------------------------------------------------------------------------


def _new_file_mode(target: Path) -> int:
    """The permissions the target would get from a plain `open(..., "w")`: its current mode if
    it exists, else 0o666 less the umask. mkstemp creates files 0o600, which would silently
    make every replaced output private."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(umask)
    return 0o666 & ~umask


def fsync_dir(folder: StrPath) -> None:
    """Make renames in `folder` durable (its entry list is on disk); best effort: not every
    platform can open a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: StrPath, data: bytes) -> Path:
    """Write `data` to `path` atomically (creating its folders); returns the path. An OSError
    (a full disk, a read-only folder) names `path`, not the temporary file."""
    path = Path(path)
    try:
        _write_and_replace(path, data)
    except OSError as error:
        reason = f"{error.strerror or error} (the file is unchanged)"
        raise OSError(error.errno, reason, str(path)) from error
    fsync_dir(path.parent)
    return path


def _write_and_replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: StrPath, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically (creating its folders); returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def write_json(path: StrPath, obj: Any) -> Path:
    """Write `obj` as indented JSON with a trailing newline, atomically. NaN and infinity are
    refused (ValueError) before anything is written: they are not JSON."""
    text = json.dumps(obj, indent=1, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


# ---- checks before the work starts ---------------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _check_ancestors(path: Path, what: str) -> None:
    """Refuse a path below a regular file (mkdir would fail late, with a confusing message)."""
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise OutputError(f"{path}: cannot write the {what}: {ancestor} is a file, not a folder")


def _ensure_writable_dir(folder: Path, path: Path, what: str) -> None:
    """Create `folder` if needed and prove it writable by creating and removing a file in it
    (os.access is not enough: it ignores read-only mounts, ACLs and, for root, the mode)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"{path}: cannot create the folder {folder} for the {what} ({error.strerror or error})"
        ) from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".gridrl-write-test-")
    except OSError as error:
        raise OutputError(
            f"{path}: the folder {folder} is not writable ({error.strerror or error})"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same inode (hard links, symlinks) or, when either
    does not exist yet, the same resolved path."""
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output_path(
    path: StrPath, *, inputs: Iterable[StrPath] = (), what: str = "output"
) -> Path:
    """Check, before long work starts, that the file `path` can be written: it is not a folder,
    no parent is a file, its folder exists or can be created and is writable, and it is none of
    `inputs` (which it would overwrite). Creates the folder; raises OutputError naming the path."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: the {what} is an existing folder, not a file")
    _check_ancestors(path, what)
    for source in inputs:
        if _same_file(path, Path(source)):
            raise OutputError(f"{path}: the {what} would overwrite the input {source}")
    _ensure_writable_dir(path.parent, path, what)
    return path


def check_output_dir(path: StrPath, *, what: str = "run folder") -> Path:
    """Check that the folder `path` exists or can be created, and is writable. Creates it;
    raises OutputError naming the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: the {what} is an existing file, not a folder")
    _check_ancestors(path, what)
    _ensure_writable_dir(path, path, what)
    return path
