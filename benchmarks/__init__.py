"""The benchmark suite (`python -m benchmarks <row>|all`, or `python -m opsa bench ...`): one
module per row of the benchmark table (docs/benchmarks.md), each comparing both sides in one run
on the same machine and inputs.

It lives beside the `opsa` package in the repository, not inside it: the installed library
does not ship it, so it runs from a checkout."""

from pathlib import Path

# the repository checkout the suite runs from (its workflow, configs, and this package)
ROOT = Path(__file__).resolve().parents[1]
