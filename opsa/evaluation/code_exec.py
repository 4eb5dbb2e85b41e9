"""Run one untrusted Python program (a candidate solution plus its tests) and say how it ended.

Each run gets, from the outside in:
- a fresh temporary directory as its working directory, $HOME and $TMPDIR, deleted afterwards;
- a new network namespace holding only a down loopback (`unshare --user --net`), where the
  kernel allows unprivileged user namespaces (`sandbox()` says; otherwise the
  network is reachable and only the audit hook below stands in the way);
- its own process group, killed as a whole at the wall-clock limit;
- resource limits, set by the guard before the program's first line: address space, CPU
  seconds, file size, and processes (the program may start no further process or thread);
- when this process is root, the unprivileged user `nobody` (so the file system's own
  permissions apply);
- an environment of PATH, LANG, HOME and TMPDIR only (no proxies, no tokens), and `python -I -B`
  (no site-packages of the user, no PYTHON* variables, no bytecode written);
- `exec_guard`'s audit hook: writes only inside the working directory, no processes, signals,
  sockets or ctypes.
This confines model-written code that misbehaves by accident; it is not a boundary against
code written to escape (see docs/method.md, "Code and GPQA evaluation").
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opsa.errors import InputError
from opsa.evaluation import exec_guard

GUARD = Path(exec_guard.__file__)  # imported, so the workflow counts it as evaluate's code
NOBODY = 65534
MIB = 1024 * 1024
Status = Literal["passed", "failed", "timed_out"]


class ExecLimits(BaseModel):
    """Limits of one program run (`evaluation.code_execution` in the config)."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(10.0, gt=0, description="wall-clock seconds")
    memory_mb: int = Field(1024, ge=64, description="address space")
    file_mb: int = Field(16, ge=1, description="largest file the program may write")


@dataclass(frozen=True)
class ExecResult:
    status: Status
    detail: str  # why it failed: the last line of stderr, or how it ended; "" when it passed
    seconds: float


def run_program(source: str, limits: ExecLimits | None = None) -> ExecResult:
    """Run `source` as a Python program under the isolation above; passed iff it ran to its
    end and exited 0."""
    limits = limits or ExecLimits()
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="opsa-exec-") as tmp:
        work = Path(tmp)
        (work / "program.py").write_text(source, encoding="utf-8")
        shutil.copyfile(GUARD, work / "guard.py")  # readable by the user it runs as
        if os.geteuid() == 0:
            os.chown(work, NOBODY, NOBODY)
        command = [*_command(), *_limit_args(limits)]
        start = time.perf_counter()
        with open(work / ".stdout", "wb") as out, open(work / ".stderr", "wb") as err:
            returncode = _run(command, work, token, limits, out, err)
        seconds = time.perf_counter() - start
        stdout_last, stderr_last = _last_line(work / ".stdout"), _last_line(work / ".stderr")
    if returncode is None:
        return ExecResult("timed_out", f"timed out after {limits.timeout_s:g} s", seconds)
    if returncode == 0 and stdout_last == token:
        return ExecResult("passed", "", seconds)
    return ExecResult("failed", _failure(returncode, stderr_last), seconds)


def _run(
    command: list[str], work: Path, token: str, limits: ExecLimits, out: IO, err: IO
) -> int | None:
    """Start the program, hand it the token on stdin, wait: its exit code, or None when the
    wall-clock limit killed its process group."""
    proc = subprocess.Popen(
        command,
        cwd=work,
        env=_environment(work),
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=err,
        start_new_session=True,
        **_as_user(),
    )
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(f"{token}\n".encode())
        proc.stdin.close()
    try:
        return proc.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def _environment(work: Path) -> dict[str, str]:
    """Nothing from this process's environment: no proxies, tokens or PYTHON* variables."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work), "TMPDIR": str(work)}


def _as_user() -> dict[str, Any]:
    """Popen's arguments that drop root to `nobody` in the child (set in C: no preexec_fn,
    which is unsafe in a process with threads)."""
    if os.geteuid() != 0:
        return {}
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


def _limit_args(limits: ExecLimits) -> list[str]:
    """The guard's arguments: address space and file size in bytes, CPU seconds."""
    cpu = int(limits.timeout_s) + 1
    return [str(limits.memory_mb * MIB), str(limits.file_mb * MIB), str(cpu)]


@dataclass(frozen=True)
class Sandbox:
    """How programs run on this machine: found once per process by `sandbox()`."""

    python: str  # the interpreter; when root drops to nobody, one nobody may run
    user: str
    network_isolated: bool  # in a network namespace of their own


@functools.cache
def sandbox() -> Sandbox:
    """Probe the interpreter (this one, else the system's Python 3 when this one is out of the
    reach of `nobody`) and whether `unshare --user --net` works for the user programs run as
    (it needs unprivileged user namespaces)."""
    candidates = [sys.executable, "/usr/bin/python3"] if os.geteuid() == 0 else [sys.executable]
    python = next((c for c in candidates if _runs([c, "-I", "-c", "pass"])), None)
    if python is None:
        raise InputError(f"code execution: the user nobody can run none of {candidates}")
    unshare = shutil.which("unshare")
    isolated = unshare is not None and _runs([unshare, "--user", "--net", python, "-I", "-c", ""])
    user = "nobody" if os.geteuid() == 0 else str(os.environ.get("USER", os.geteuid()))
    return Sandbox(python, user, isolated)


def _runs(command: list[str]) -> bool:
    """Whether `command` runs and exits 0 as the user programs run as."""
    try:
        done = subprocess.run(
            command,
            cwd=tempfile.gettempdir(),
            env=_environment(Path(tempfile.gettempdir())),
            capture_output=True,
            timeout=30,
            **_as_user(),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _command() -> list[str]:
    box = sandbox()
    prefix = [str(shutil.which("unshare")), "--user", "--net"] if box.network_isolated else []
    return [*prefix, box.python, "-I", "-B", "guard.py", "program.py"]


def _last_line(path: Path, size: int = 4096) -> str:
    """The last non-empty line of a file, read from its end only."""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - size))
        lines = f.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else ""


def _failure(returncode: int, stderr_last: str) -> str:
    if stderr_last:
        return stderr_last
    if returncode < 0:
        number = -returncode
        name = signal.Signals(number).name if number in signal.valid_signals() else number
        return f"killed by signal {name}"
    if returncode == 0:
        return "exited before its end"
    return f"exit code {returncode}"
