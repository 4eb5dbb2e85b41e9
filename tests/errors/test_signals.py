"""A step stopped from outside says so: SIGTERM (Snakemake, a scheduler's time limit, kill)
is one line naming the signal, with no traceback and nothing written."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from opsa.models.reference import EMBEDDED
from tests.errors.conftest import ERROR_LINE, _env


def test_a_terminated_step_names_the_signal_and_keeps_nothing(tmp_path: Path) -> None:
    step = subprocess.Popen(
        [sys.executable, "-m", "opsa", "--threads", "1", "prepare-model",
         "--spec", json.dumps({"source": EMBEDDED}), "--out", "m"],
        cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert step.stderr is not None
    seen = []
    for line in step.stderr:  # the step is under way: it has started to read the model
        seen.append(line)
        if "preparing" in line:
            break
    time.sleep(1.0)
    step.send_signal(signal.SIGTERM)
    output = "".join(seen) + step.stderr.read()
    assert step.wait(timeout=120) == 128 + signal.SIGTERM
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if ERROR_LINE.search(line)]
    assert len(errors) == 1 and errors[0].startswith(
        "opsa prepare-model: error: stopped by SIGTERM from outside the step"
    ), output[-2000:]
    assert list(tmp_path.iterdir()) == []  # no output, no temporary sibling
