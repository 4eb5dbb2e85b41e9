"""The cause of a failed job, as the Snakefile's onerror handler prints it."""

from __future__ import annotations

import io
from types import SimpleNamespace

from opsa.cli.failures import KILLED, cause, print_failed_jobs


def test_the_step_error_line_wins_over_later_output(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("INFO loading\nopsa generate: error: p.jsonl:2: not valid JSON\nbye\n")
    assert cause(log) == "opsa generate: error: p.jsonl:2: not valid JSON"


def test_a_crash_gives_its_last_line_and_progress_bars_their_last_state(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory\n")
    assert cause(log) == "RuntimeError: CUDA out of memory"
    log.write_text("generate:  10%|#\rgenerate:  50%|#####\r\n\n")  # SIGKILLed mid-bar
    assert cause(log) == KILLED + "generate:  50%|#####"
    assert cause(log).startswith("no error line: killed from outside")
    assert cause(tmp_path / "absent.log") is None


def test_one_line_per_failed_job(tmp_path):
    log = tmp_path / "j.log"
    log.write_text("opsa judge: error: judge 'lg': needs a judge model\n")
    jobs = [
        SimpleNamespace(rule=SimpleNamespace(name="judge"), log=[str(log)]),
        SimpleNamespace(rule=SimpleNamespace(name="cp"), log=[]),
    ]
    out = io.StringIO()
    print_failed_jobs(jobs, out)
    assert out.getvalue().splitlines() == [
        f"judge failed: opsa judge: error: judge 'lg': needs a judge model (log: {log})",
        "cp failed: no log output",
    ]
