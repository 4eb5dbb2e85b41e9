"""`python -m benchmarks <row>|all [--threads N] ...`: the same as `python -m opsa [--threads N]
bench <row>|all ...` (see `python -m benchmarks --help`)."""

import sys

from opsa.cli import main


def run(argv: list[str]) -> int:
    """`opsa bench` with these arguments; `--threads N` (opsa's global option) may stand
    anywhere among them."""
    argv, lead = list(argv), []
    for i, word in enumerate(argv):
        if word == "--threads" and i + 1 < len(argv):
            lead = argv[i : i + 2]
            del argv[i : i + 2]
            break
        if word.startswith("--threads="):
            lead = [word]
            del argv[i]
            break
    return main([*lead, "bench", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
