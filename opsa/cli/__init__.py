"""The `opsa` command line: every Snakemake rule calls `python -m opsa <step> ...`.

Each step parses its arguments, validates config values passed as JSON, and calls one package
function. A bad input ends the step with one line on stderr and exit status 1. The steps live
beside their area: `pipeline.py` (models, data, generation, judges, evaluation, report),
`contexts.py` (context search) and `training.py`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from opsa.errors import InputError, validated
from opsa.records import filesystem_failure

Handler = Callable[[argparse.Namespace], None]
STEPS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None]]] = {}


def step(
    name: str, setup: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        STEPS[name] = (handler, setup)
        return handler

    return register


def json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e.msg}") from None


def optional_path(text: str) -> Path | None:
    return None if text == "none" else Path(text)


def model_arg(text: str) -> tuple[str, Path]:
    """NAME=DIR: a model variant's name and its directory."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"'{text}': expected NAME=DIR")
    return name, Path(path)


def unique(pairs: list[tuple[Any, Path]], flag: str) -> dict[Any, Path]:
    """`flag`'s NAME=PATH pairs as a mapping; a name given twice is an error naming it."""
    found: dict[Any, Path] = {}
    for name, path in pairs:
        if name in found:
            raise InputError(f"{flag}: {name} is given twice")
        found[name] = path
    return found


def bool_arg(text: str) -> bool:
    return text.lower() in ("true", "1", "yes")


def judge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--judge", required=True, help="the judge's name (a key of `judges:`)")
    p.add_argument("--spec", type=json_arg, required=True, help="its `judges:` entry as JSON")
    p.add_argument("--judge-model", type=optional_path, default=None, help="a path or 'none'")
    p.add_argument("--out", type=Path, required=True)


def build_judge_from_args(a: argparse.Namespace) -> Any:
    """The judge named on the command line (`judge_args`)."""
    from opsa.judges.spec import build_judge, load_judge_spec

    return build_judge(a.judge, load_judge_spec(a.judge, a.spec), a.judge_model)


def step_runtime(a: argparse.Namespace) -> AbstractContextManager:
    """The runtime every model of the step runs on (`--runtime`, `--backend`)."""
    from opsa.models.runtime import Runtime, RuntimeConfig, using

    return using(Runtime(validated(RuntimeConfig, a.runtime, "runtime"), a.backend))


def all_steps() -> dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None]]]:
    """Every step, by name (importing the modules that define them registers them)."""
    from opsa.cli import analysis, bench, contexts, pipeline, training  # noqa: F401

    return STEPS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsa", description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--runtime", type=json_arg, default={}, help="the config's `runtime:` block as JSON"
    )
    parser.add_argument(
        "--backend", choices=["auto", "hf", "vllm"], default="auto", help="generation.backend"
    )
    sub = parser.add_subparsers(dest="step", required=True)
    for name, (handler, setup) in all_steps().items():
        p = sub.add_parser(name, help=(handler.__doc__ or "").strip() or None)
        setup(p)
        p.set_defaults(handler=handler)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    stop_on_signals()
    try:
        with step_runtime(args):
            args.handler(args)
    except InputError as e:
        print(f"opsa {args.step}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the filesystem refusing a write is the user's to fix; else a bug
        line = filesystem_failure(e, getattr(args, "out", None) or ".")
        if line is None:
            raise
        print(f"opsa {args.step}: error: {line}", file=sys.stderr)
        return 1
    except (Stopped, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        print(
            f"opsa {args.step}: error: stopped by {signal.Signals(signum).name} from outside "
            "the step (Snakemake, a scheduler's time limit, kill); nothing partial was kept, "
            "and a rerun continues (training from its last checkpoint)",
            file=sys.stderr,
        )
        return 128 + signum
    return 0


class Stopped(BaseException):
    """A termination signal arrived: raised in the main thread, so every `finally` (the
    temporary outputs of opsa.records.atomic_path) runs before the step ends."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP end the step as Ctrl-C does, with one line saying so."""

    def stop(signum: int, _frame: Any) -> None:
        raise Stopped(signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
