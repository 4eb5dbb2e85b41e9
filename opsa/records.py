"""Reading and writing the pipeline's files: text, YAML, JSONL/JSON rows, written atomically.

Every writer goes through `atomic_path`, so a failed step never leaves a partial output.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from opsa.errors import InputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; move it onto `path` only if the block succeeds.

    Works for files and directories. On failure the temporary path is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{path}: the step finished without writing its output")
        _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


FILESYSTEM_ERRORS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the filesystem is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
_FILESYSTEM_TEXT = {
    "No space left on device": errno.ENOSPC,
    "Read-only file system": errno.EROFS,
    "Disk quota exceeded": errno.EDQUOT,
}


def free_mb(path: str | Path) -> float:
    """Free space, in MB, on the filesystem that holds `path` (or its nearest parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / 1e6


def filesystem_failure(e: BaseException, where: str | Path = ".") -> str | None:
    """One line for a write the filesystem refused (full, read-only, not permitted): the path,
    the cause and the free space; None for any other error. Libraries that wrap the OS error
    (safetensors, torch) are recognised by the OS's own words."""
    code = e.errno if isinstance(e, OSError) else None
    if code not in FILESYSTEM_ERRORS:
        code = next((c for text, c in _FILESYSTEM_TEXT.items() if text in str(e)), None)
    if code is None:
        return None
    path = (e.filename if isinstance(e, OSError) else None) or where
    return (
        f"{path}: {FILESYSTEM_ERRORS[code]} ({free_mb(path):.0f} MB free on its filesystem); "
        "nothing partial was kept"
    )


def check_writable(folders: Iterable[str | Path]) -> None:
    """Every existing folder among `folders` can be written, before any job writes there."""
    for folder in map(Path, folders):
        if folder.is_dir() and not os.access(folder, os.W_OK):
            read_only = os.statvfs(folder).f_flag & os.ST_RDONLY
            why = "the filesystem is read-only" if read_only else "permission denied"
            raise InputError(f"{folder}/: not writable ({why}); nothing was run")


def not_a_file(path: str | Path) -> str:
    """Why `path` is not a regular file that can be read, in the words a user needs: a
    directory, a FIFO (which would block the reader), a device or socket, or nothing."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "file not found"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"is {what}, not a data file"


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's content; a missing file, or bytes that are not UTF-8, is an
    InputError naming the file (and the line of the first bad byte)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {not_a_file(path)}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save it as UTF-8"
        ) from None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file of objects; a missing file or a bad line is an InputError naming the
    file, the line and the cause."""
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: not a JSON object (a {type(row).__name__})")
        rows.append(row)
    return rows


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader for which a mapping that repeats a key is an error."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise InputError(
                f"{key_node.start_mark.name}:{line}: key '{key}' repeated "
                f"(first at line {seen[key]}; YAML would keep only the last)"
            )
        seen[key] = line
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> Any:
    """A YAML (or JSON) file's content; a syntax error, a repeated key or bytes that are not
    UTF-8 are one InputError naming the file and the line."""
    try:
        return yaml.load(_named(read_text(path), path), Loader=_StrictLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"{where}: YAML syntax error: {e.problem or e.context}") from None


def _named(text: str, path: str | Path) -> io.StringIO:
    """The text as a stream whose marks carry the file name."""
    stream = io.StringIO(text)
    stream.name = str(path)
    return stream


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def require_columns(rows: list[dict[str, Any]], columns: Iterable[str], path: str | Path) -> None:
    """Fail with one line if the rows are empty or any row lacks a required column."""
    if not rows:
        raise InputError(f"{path}: no rows")
    for column in columns:
        for row in rows:
            if column not in row:
                raise InputError(f"{path}: missing column '{column}' (row id {row.get('id')})")
