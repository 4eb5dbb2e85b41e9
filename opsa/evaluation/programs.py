"""The program a model's completion gives, and the test program that checks it.

Two test formats ("answer types"), named after the sets that introduced them:
- "humaneval": the prompt is a function's signature and docstring (`prompt`), the test defines
  `check(candidate)` (`test`), and `entry_point` names the function. The program is the prompt
  followed by the completion's code: a whole new definition of the function (what chat models
  write) or, when the code does not define it, the body that continues the prompt.
- "mbpp": the tests are assert statements (`test_list`), with optional imports
  (`test_imports`) and setup code (`test_setup_code`). The program is the completion's code.
In both, a top-level `if __name__ == "__main__":` block of the completion is dropped (it would
run demo code, often reading stdin, before the tests).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from opsa.data.prepare import TEST_COLUMNS

CODE_TYPES = tuple(TEST_COLUMNS)

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"", "python", "python3", "py"}


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks tagged Python (or untagged), in order; an unclosed last fence
    (a completion cut at its token limit) runs to the end of the text."""
    return [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in _PYTHON_TAGS]


def defines(code: str, name: str) -> bool:
    """Whether `code` defines a function `name` at its top level (or anywhere, if it does not
    parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in tree.body
    )


def extract_code(response: str, entry_point: str | None = None) -> str:
    """The code of a completion: the first fenced block that defines `entry_point`, else the
    first fenced block, else the whole response. Indentation is kept (a bare continuation of a
    function body starts indented)."""
    blocks = code_blocks(response)
    if entry_point is not None:
        blocks = [b for b in blocks if defines(b, entry_point)] or blocks
    code = blocks[0] if blocks else response
    return without_main_block(code.strip("\n").rstrip())


def without_main_block(code: str) -> str:
    """`code` without its top-level `if __name__ == "__main__":` blocks (unchanged if it does
    not parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.splitlines()
    for node in reversed(tree.body):
        if _is_main_guard(node):
            del lines[node.lineno - 1 : node.end_lineno]
    return "\n".join(lines).rstrip()


def _is_main_guard(node: ast.stmt) -> bool:
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)):
        return False
    names = [node.test.left, *node.test.comparators]
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in names)


def humaneval_program(response: str, meta: dict[str, Any]) -> str:
    """The prompt, the completion's function, the test and `check(<entry point>)`."""
    prompt, entry_point = str(meta["prompt"]), str(meta["entry_point"])
    code = extract_code(response, entry_point)
    solution = (
        f"{prompt.rstrip()}\n\n{code}\n"
        if defines(code, entry_point)
        else f"{prompt}{_continuation(code)}\n"
    )
    return f"{solution}\n\n{meta['test']}\n\ncheck({entry_point})\n"


def _continuation(code: str) -> str:
    """A body that continues the prompt: indented as a function body if the model dropped it."""
    if code and not code[0].isspace():
        return "\n".join("    " + line if line else line for line in code.splitlines())
    return code


def mbpp_program(response: str, meta: dict[str, Any]) -> str:
    """The test imports, the completion's code, the setup code and every assert."""
    tests = meta["test_list"]
    asserts = "\n".join(tests) if isinstance(tests, list) else str(tests)
    entry_point = _called_name(asserts)
    parts = [
        _as_text(meta.get("test_imports")),
        extract_code(response, entry_point),
        _as_text(meta.get("test_setup_code")),
        asserts,
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return "\n".join(value) if isinstance(value, list) else str(value)


def _called_name(asserts: str) -> str | None:
    """The function the first assert calls ("assert f(1) == 2" -> "f")."""
    match = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:math\.isclose\()?\s*(\w+)\s*\(", asserts)
    return match.group(1) if match else None


def checking_program(answer_type: str, response: str, meta: dict[str, Any]) -> str:
    """The program that passes iff the completion solves the item."""
    if answer_type == "humaneval":
        return humaneval_program(response, meta)
    return mbpp_program(response, meta)
