"""Writing output without ever losing a user's files.

* :func:`check_output_dir` is the output policy, applied before any work starts: a directory
  may be written only where it is absent, empty, or an earlier output of the same kind
  (recognised by its marker file) that the caller asked to replace (``overwrite=True``).
  Anything else — a directory holding other files, the current directory or one of its
  parents, a path that is or contains an input (model, data, runs being compared), a file, a
  symbolic link, a mount point — is refused with a one-line error.
* :func:`atomic_directory` builds the output in a hidden sibling and swaps it in only when it is
  complete. A replaced output is kept until the new one is in place and is restored if the swap
  fails (an exception or Ctrl-C). What a *killed* process leaves behind (``SIGKILL`` cannot be
  caught) is recovered by the next call for the same target: a half-built output is removed,
  an earlier output moved aside and never swapped back is restored.
* :func:`atomic_write_bytes` / :func:`atomic_write_text`: one file, via ``os.replace``.

Hidden siblings are named ``.<name>.synapse-partial-<pid>-<hex>`` and
``.<name>.synapse-previous-<pid>-<hex>``; one whose process still runs is left alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

PARTIAL = "synapse-partial"
PREVIOUS = "synapse-previous"
#: Free space a run directory needs at least (report with embedded plotly, tables).
MIN_FREE_BYTES = 32 * 2**20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _public(path: Path, directory: bool) -> None:
    """Give a temp-made path the permissions a plain ``open``/``mkdir`` would (mkstemp and
    mkdtemp make them private)."""
    mode = (0o777 if directory else 0o666) & ~_umask()
    os.chmod(path, mode | (stat.S_IRUSR | stat.S_IWUSR))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory + ``os.replace``.

    Raises:
        FileNotFoundError / PermissionError: the parent directory is missing or not writable.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        _public(Path(tmp), directory=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def is_output_of(path: str | os.PathLike[str], marker: str, schema: str) -> bool:
    """Whether ``path`` is a directory written by synapse_lens: its ``marker`` JSON file names
    ``schema`` (``{"schema": "synapse_lens.run/1", ...}``)."""
    file = Path(path) / marker
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("schema") == schema


def _is_within(path: Path, other: Path) -> bool:
    """``path`` is ``other`` or one of its parents."""
    return path == other or path in other.parents


def _existing_ancestor(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_output_dir(
    out_dir: str | os.PathLike[str],
    *,
    marker: str,
    schema: str,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    need_bytes: int = MIN_FREE_BYTES,
) -> Path:
    """Refuse, before any work, an output directory whose writing could lose anything.

    Accepted: a path that does not exist (its parents are created), an empty directory, or an
    earlier output of this kind (``marker`` names ``schema``) when ``overwrite``. Leftovers of an
    earlier killed write to the same path are recovered first (see module docstring).

    Args:
        out_dir: the directory to write.
        marker: the JSON file that identifies an earlier output (``"summary.json"``).
        schema: the ``"schema"`` value that file must hold.
        overwrite: replace an earlier output of this kind.
        inputs: paths read by the job (model directory, data file, ...): the output may be
            neither one of them nor a parent of one.
        need_bytes: free space required on the output's file system.

    Returns:
        The output path (as given).

    Raises:
        FileExistsError: a non-empty directory that is not an earlier output, an earlier
            output without ``overwrite``, a file, a symbolic link.
        ValueError: the current directory or a parent of it, an input or a parent of one, a
            mount point.
        PermissionError / NotADirectoryError: the parent cannot be written.
        OSError: too little free space.

    Example:
        >>> check_output_dir(tmp_path / "run", marker="summary.json",
        ...                  schema="synapse_lens.run/1")  # doctest: +SKIP
    """
    out = Path(out_dir)
    shown = str(out)
    if out.is_symlink():
        raise FileExistsError(f"output path {shown!r} is a symbolic link; give a real path")
    resolved = out.resolve()
    if _is_within(resolved, Path.cwd().resolve()):
        raise ValueError(f"output path {shown!r} is the current directory or one of its "
                         "parents; give a new directory, e.g. runs/my-run")
    for item in inputs:
        source = Path(item).resolve()
        if _is_within(resolved, source):
            raise ValueError(f"output path {shown!r} is (or contains) the input {str(item)!r}; "
                             "choose a directory of its own")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {shown!r} exists and is not a directory")
    recover_interrupted(out)
    if out.is_dir():
        if os.path.ismount(out):
            raise ValueError(f"output path {shown!r} is a mount point; give a directory in it")
        if any(out.iterdir()):
            if not is_output_of(out, marker, schema):
                raise FileExistsError(
                    f"output directory {shown!r} is not empty and is not a synapse_lens output "
                    f"(no {marker} with schema {schema!r}); nothing was changed: give a new "
                    "directory")
            if not overwrite:
                raise FileExistsError(
                    f"output directory {shown!r} holds an earlier synapse_lens output; pass "
                    "--overwrite (overwrite=True) to replace it, or give a new directory")
    ancestor = _existing_ancestor(resolved.parent)
    if not ancestor.is_dir():
        raise NotADirectoryError(f"cannot create {shown!r}: {str(ancestor)!r} is not a directory")
    try:
        probe = tempfile.mkdtemp(dir=ancestor, prefix=".synapse-write-check.")
    except OSError as err:
        raise PermissionError(f"output directory {str(ancestor)!r} is not writable: "
                              f"{err.strerror or err}") from None
    os.rmdir(probe)
    free = shutil.disk_usage(ancestor).free
    if free < need_bytes:
        raise OSError(f"only {free / 2**20:.1f} MiB free on the file system of "
                      f"{str(ancestor)!r}; this output needs about {need_bytes / 2**20:.0f} MiB")
    return out


def _siblings(target: Path, kind: str) -> list[tuple[Path, int]]:
    """Hidden siblings of ``target`` of one kind, with the pid that made them."""
    prefix = f".{target.name}.{kind}-"
    found = []
    with contextlib.suppress(OSError):
        for entry in sorted(target.parent.iterdir()):
            if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink():
                pid = entry.name[len(prefix):].split("-", 1)[0]
                if pid.isdigit():
                    found.append((entry, int(pid)))
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(target: str | os.PathLike[str]) -> list[str]:
    """Clean up after an earlier write to ``target`` that was killed.

    A half-built output (``partial``) is removed. An earlier output moved aside for replacement
    (``previous``) is moved back when ``target`` is missing (the kill came between the two
    renames), and removed when ``target`` exists (the kill came after the new output was in
    place). Siblings whose process still runs are left alone.

    Returns:
        One sentence per action (also logged as warnings).
    """
    target = Path(target)
    actions = []
    for path, pid in _siblings(target, PARTIAL):
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            actions.append(f"removed {str(path)!r}, the incomplete output of an interrupted run")
    for path, pid in _siblings(target, PREVIOUS):
        if _alive(pid):
            continue
        if not target.exists():
            os.replace(path, target)
            actions.append(f"restored {str(target)!r} from {str(path)!r}: an interrupted run had "
                           "moved it aside")
        else:
            shutil.rmtree(path, ignore_errors=True)
            actions.append(f"removed {str(path)!r}, an output already replaced by a later run")
    for action in actions:
        logger.warning(action)
    return actions


def _hidden_sibling(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _make_parents(parent: Path) -> list[Path]:
    """Create missing parents; return the ones created, deepest first."""
    created = []
    path = parent
    while not path.exists():
        created.append(path)
        path = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    return created


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Build a directory in a hidden sibling and move it to ``target`` only on success.

    On an exception (Ctrl-C included) the partial directory is removed, parents this call
    created are removed again, and ``target`` is left as it was. An existing ``target`` is
    replaced when ``overwrite`` (else ``FileExistsError``); it is kept until the new directory
    is in place and restored if the swap fails. Leftovers of an earlier killed call are
    recovered first (:func:`recover_interrupted`). Apply :func:`check_output_dir` first for
    user-chosen paths.

    Example:
        >>> with atomic_directory(tmp_path / "run") as d:  # doctest: +SKIP
        ...     (d / "summary.json").write_text("{}")
    """
    target = Path(target)
    recover_interrupted(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{str(target)!r} already exists")
    parent = target.parent
    created = _make_parents(parent)
    try:
        if not os.access(parent, os.W_OK):
            raise PermissionError(f"output directory {str(parent)!r} is not writable")
        tmp = _hidden_sibling(target, PARTIAL)
        tmp.mkdir()
    except BaseException:
        _remove_empty(created)
        raise
    _public(tmp, directory=True)
    try:
        yield tmp
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def _swap_in(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target``; an existing ``target`` is restored if that fails."""
    if not target.exists():
        os.replace(tmp, target)
        return
    previous = _hidden_sibling(target, PREVIOUS)
    try:
        os.replace(target, previous)
        os.replace(tmp, target)
    except BaseException:
        if previous.exists() and not target.exists():
            os.replace(previous, target)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _remove_empty(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.rmdir()
