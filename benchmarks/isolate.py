"""Run one side of a comparison in a fresh interpreter, so its peak resident memory is its own.

`run_isolated("benchmarks.x:fn", kwargs, threads, log)` starts `python -m benchmarks.isolate`
(with the checkout on its PYTHONPATH, whatever the working directory), which sets torch's
threads, calls `fn(**kwargs)` and writes its JSON result with the process's peak RSS; the parent
reads it back. A side that fails ends the row with one line naming its log.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import ROOT
from opsa.errors import InputError


class SideFailed(InputError):
    """A benchmark side exited with an error (its log says why)."""


def run_isolated(
    target: str, kwargs: dict[str, Any], threads: int, log_path: Path, timeout: int = 3600
) -> dict[str, Any]:
    """The result of `target(**kwargs)` run alone, plus `peak_rss_mb` and `threads`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="opsa-bench-") as tmp:
        out = Path(tmp) / "result.json"
        args = [target, json.dumps(kwargs), str(threads), str(out)]
        command = [sys.executable, "-m", "benchmarks.isolate", *args]
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = os.environ | {"PYTHONPATH": path}
        with log_path.open("w") as log:
            code = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, env=env
            )
        if code.returncode != 0 or not out.is_file():
            lines = log_path.read_text().strip().splitlines() or ["(no output)"]
            raise SideFailed(f"{target} exited {code.returncode}: {lines[-1]} (log: {log_path})")
        return json.loads(out.read_text())


def _main(target: str, kwargs: str, threads: str, out: str) -> None:
    import torch

    from benchmarks.machine import peak_rss_mb

    torch.set_num_threads(int(threads))
    module, name = target.split(":")
    result = getattr(importlib.import_module(module), name)(**json.loads(kwargs))
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    result["threads"] = torch.get_num_threads()
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    _main(*sys.argv[1:5])
