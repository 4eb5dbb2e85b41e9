"""The benchmark suite (`python -m opsa bench <row>|all`): one module per row of the README's
benchmark table, each comparing both sides in one run on the same machine and inputs."""
