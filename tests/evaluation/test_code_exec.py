"""Programs really run, in a subprocess, under the limits: each test starts a Python process
(about 0.05 s each here; the time-limit test waits its 1 s limit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opsa.evaluation.code_exec import ExecLimits, run_program, sandbox

SOLUTION = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
FAST = ExecLimits(timeout_s=5)


def test_a_correct_solution_passes_and_an_incorrect_one_fails_with_its_error() -> None:
    assert run_program(SOLUTION + TESTS, FAST).status == "passed"
    wrong = run_program(SOLUTION.replace("a + b", "a - b") + TESTS, FAST)
    assert (wrong.status, wrong.detail) == ("failed", "AssertionError")
    broken = run_program("def add(a, b)\n    return a + b\n" + TESTS, FAST)
    assert broken.status == "failed" and broken.detail.startswith("SyntaxError")


def test_an_infinite_loop_is_cut_off_at_the_wall_clock_limit() -> None:
    result = run_program("while True:\n    pass\n", ExecLimits(timeout_s=1))
    assert result.status == "timed_out"
    assert 1 <= result.seconds < 3


def test_a_sleeping_program_is_cut_off_too() -> None:
    """Sleeping uses no CPU time, so only the wall-clock limit (killing the group) ends it."""
    result = run_program("import time\ntime.sleep(60)\n", ExecLimits(timeout_s=1))
    assert result.status == "timed_out" and result.seconds < 3


def test_exiting_early_with_status_zero_is_not_a_pass() -> None:
    for exit_call in ("import sys; sys.exit(0)", "import os; os._exit(0)"):
        result = run_program(f"{exit_call}\n{TESTS}", FAST)
        assert result.status == "failed", exit_call


def test_writing_outside_the_temporary_directory_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    result = run_program(f"open({str(target)!r}, 'w').write('x')\n", FAST)
    assert result.status == "failed" and "PermissionError" in result.detail
    assert not target.exists()
    inside = run_program(
        "open('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read()", FAST
    )
    assert inside.status == "passed"


def test_deleting_outside_the_temporary_directory_fails(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("data")
    result = run_program(f"import os\nos.remove({str(victim)!r})\n", FAST)
    assert result.status == "failed" and victim.read_text() == "data"


def test_a_huge_allocation_fails_cleanly_under_the_memory_limit() -> None:
    result = run_program("x = bytearray(8 * 1024 ** 3)\n", ExecLimits(timeout_s=5, memory_mb=256))
    assert (result.status, result.detail) == ("failed", "MemoryError")


def test_a_large_file_fails_at_the_file_size_limit() -> None:
    program = "open('big', 'wb').write(b'x' * (4 * 1024 * 1024))\n"
    result = run_program(program, ExecLimits(timeout_s=5, file_mb=1))
    assert result.status == "failed"


@pytest.mark.parametrize(
    "program",
    [
        "import subprocess\nsubprocess.run(['true'])\n",
        "import os\nos.system('true')\n",
        "import os\nos.fork()\n",
        "import threading\nthreading.Thread(target=print).start()\n",
        "import socket\nsocket.create_connection(('127.0.0.1', 9))\n",
    ],
)
def test_processes_threads_and_sockets_are_refused(program: str) -> None:
    assert run_program(program, FAST).status == "failed"


def test_the_program_sees_a_stripped_environment_and_its_own_directory() -> None:
    os.environ["HTTPS_PROXY"] = "http://proxy.invalid:3128"
    try:
        program = (
            "import os, sys\n"
            "assert 'HTTPS_PROXY' not in os.environ, os.environ\n"
            "assert os.getcwd() == os.environ['HOME'] == os.environ['TMPDIR']\n"
            "assert os.path.basename(os.getcwd()).startswith('opsa-exec-')\n"
            "assert sys.flags.isolated\n"
        )
        result = run_program(program, FAST)
    finally:
        del os.environ["HTTPS_PROXY"]
    assert result.status == "passed", result.detail


def test_where_user_namespaces_work_the_program_has_no_network_but_loopback() -> None:
    if not sandbox().network_isolated:
        pytest.skip("unshare --user --net does not work here (docs/method.md: isolation)")
    program = "import socket\nassert [n for _, n in socket.if_nameindex()] == ['lo']\n"
    result = run_program(program, FAST)
    assert result.status == "passed", result.detail


def test_as_root_programs_run_as_nobody_and_cannot_read_root_only_files(tmp_path: Path) -> None:
    """Reading is not the audit hook's business: only the dropped user stops this read."""
    if os.geteuid() != 0:
        pytest.skip("only root drops privileges")
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    secret.chmod(0o600)
    result = run_program(f"open({str(secret)!r}).read()\n", FAST)
    assert result.status == "failed" and "PermissionError" in result.detail


def test_a_program_killed_by_a_signal_fails_naming_it() -> None:
    result = run_program("import signal\nsignal.raise_signal(signal.SIGKILL)\n", FAST)
    assert (result.status, result.detail) == ("failed", "killed by signal SIGKILL")
