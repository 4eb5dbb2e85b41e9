from __future__ import annotations

from opsa.evaluation.code_exec import ExecLimits, run_program
from opsa.evaluation.programs import (
    checking_program,
    code_blocks,
    defines,
    extract_code,
    without_main_block,
)

# HumanEval/0's shape: imports and a signature with its docstring, a check(candidate) test
HUMANEVAL = {
    "prompt": (
        "from typing import List\n\n\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        '    """ Whether any two numbers are closer than threshold. """\n'
    ),
    "test": (
        "def check(candidate):\n"
        "    assert candidate([1.0, 2.0, 3.9, 4.0], 0.3) == True\n"
        "    assert candidate([1.0, 2.0, 3.0], 0.5) == False\n"
    ),
    "entry_point": "has_close_elements",
}
BODY = (
    "    return any(abs(a - b) < threshold\n"
    "               for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
)
MBPP = {
    "test_list": ["assert square(3) == 9", "assert square(-2) == 4"],
    "test_setup_code": "",
}
FAST = ExecLimits(timeout_s=5)


def passes(answer_type: str, response: str, meta: dict) -> bool:
    return run_program(checking_program(answer_type, response, meta), FAST).status == "passed"


def test_fenced_blocks_are_found_and_an_unclosed_last_one_runs_to_the_end() -> None:
    text = "Here:\n```python\nx = 1\n```\nand\n```bash\nls\n```\n```py\ny = 2\n"
    assert code_blocks(text) == ["x = 1\n", "y = 2\n"]


def test_extract_code_prefers_the_block_that_defines_the_entry_point() -> None:
    text = "```python\nprint(f(1))\n```\nthen\n```python\ndef f(x):\n    return x\n```"
    assert extract_code(text, "f") == "def f(x):\n    return x"
    assert extract_code(text) == "print(f(1))"
    assert extract_code("def f(x):\n    return x\n") == "def f(x):\n    return x"


def test_extract_code_keeps_the_indentation_of_a_bare_body() -> None:
    assert extract_code(BODY) == BODY.rstrip()


def test_a_main_block_is_dropped() -> None:
    code = "def f():\n    return 1\n\nif __name__ == '__main__':\n    print(input())\n"
    assert without_main_block(code) == "def f():\n    return 1"
    assert defines(without_main_block(code), "f")


def test_humaneval_chat_answer_with_the_whole_function_passes_and_a_wrong_one_fails() -> None:
    whole = f"Sure!\n```python\n{HUMANEVAL['prompt']}{BODY}```\nDone."
    assert passes("humaneval", whole, HUMANEVAL)
    wrong = whole.replace("< threshold", "> threshold")
    assert not passes("humaneval", wrong, HUMANEVAL)


def test_humaneval_bare_continuation_is_appended_to_the_prompt() -> None:
    assert passes("humaneval", BODY, HUMANEVAL)
    unindented = "\n".join(line[4:] for line in BODY.splitlines())
    assert passes("humaneval", unindented, HUMANEVAL)


def test_humaneval_answer_that_only_talks_fails() -> None:
    assert not passes("humaneval", "I would loop over the pairs.", HUMANEVAL)


def test_mbpp_function_passes_its_asserts_and_demo_code_does_not_get_in_the_way() -> None:
    answer = (
        "```python\ndef square(n):\n    return n * n\n\n"
        "if __name__ == '__main__':\n    print(square(int(input())))\n```"
    )
    assert passes("mbpp", answer, MBPP)
    assert not passes("mbpp", answer.replace("n * n", "n + n"), MBPP)


def test_mbpp_setup_code_and_imports_come_before_the_asserts() -> None:
    meta = {
        "test_list": ["assert area(1) == math.pi * K"],
        "test_setup_code": "K = 1",
        "test_imports": ["import math"],
    }
    assert passes("mbpp", "def area(r):\n    return math.pi * r * r\n", meta)
