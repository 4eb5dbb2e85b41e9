"""The package files a step of the command line runs, so that editing a step's code reruns
exactly the jobs that run it: the Snakemake rules list them as inputs and the generated
`dvc.yaml` lists them (folded to folders) as stage dependencies.

A step is found by its `@step("name", ...)` decorator in `opsa/cli/*.py`; its files are the
command line's entry points, the handler's module and every opsa module it imports, lazily
or not, followed transitively. Nothing is imported: the files are read as syntax trees.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


@cache
def step_code(step: str, package: Path = PACKAGE) -> tuple[Path, ...]:
    """Every package file `python -m opsa <step>` runs, sorted."""
    cli = package / "cli"
    found = [
        (module, node)
        for module in sorted(cli.glob("*.py"))
        for node in ast.parse(module.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef) and _is_step(node, step)
    ]
    if not found:
        raise KeyError(f"no opsa step named '{step}' in {cli}")
    module, handler = found[0]
    files = {package / "__main__.py", cli / "__init__.py", module}
    todo = _opsa_imports(handler)
    while todo:
        path = _module_file(todo.pop(), package)
        if path is not None and path not in files:
            files.add(path)
            todo += _opsa_imports(ast.parse(path.read_text(encoding="utf-8")))
    return tuple(sorted(files))


def _is_step(function: ast.FunctionDef, step: str) -> bool:
    return any(
        isinstance(d, ast.Call) and d.args and getattr(d.args[0], "value", None) == step
        for d in function.decorator_list
    )


def _opsa_imports(tree: ast.AST) -> list[str]:
    """Modules named by the opsa imports anywhere in `tree` (`from a import b` gives a and
    a.b: b may be a module)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return [name for name in names if name.split(".")[0] == "opsa"]


def _module_file(name: str, package: Path) -> Path | None:
    base = package.joinpath(*name.split(".")[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def folded(files: tuple[Path, ...] | list[Path], root: Path) -> list[str]:
    """Files as paths relative to `root`, each file of a subpackage folded into its folder
    (`opsa/training`), top-level modules kept as files: DVC's dependency granularity."""
    out = set()
    for path in files:
        relative = path.relative_to(root)
        out.add(str(relative if len(relative.parts) <= 2 else Path(*relative.parts[:2])))
    return sorted(out)
