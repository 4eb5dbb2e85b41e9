"""Final-answer extraction and equivalence for reasoning sets.

Four answer types (code sets are scored by running tests instead: `programs`, `code_grading`):
- "gsm8k": the reference follows "#### "; the model's answer is the first number after the last
  "####" or "answer is" marker, else the last number in the response.
- "math": the model's answer is the content of the last \\boxed{...}; equivalence is decided by
  math-verify, except that two plain numbers compare numerically.
- "number": the last number in the response must equal the reference.
- "choice": a multiple-choice letter; the model's is the one after the last "Answer:" (or
  "answer is"), else the content of the last \\boxed{...} when that is a lone letter.

Each is an `AnswerType` in `ANSWER_TYPES` (`register` adds one); a set's `answer_type` names
one of them, or a code type (humaneval, mbpp: graded by running the program instead,
`opsa.data.prepare.TEST_COLUMNS`, `programs`, `code_grading`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# A sign only counts when it does not follow a word or digit ("3-5" is not "-5").
_NUMBER = re.compile(r"(?:(?<![\w)])(-))?\$?\s?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")
_MARKER = re.compile(r"####|answer is", re.IGNORECASE)
_BOXED = "\\boxed"
_LETTER_AFTER_MARKER = re.compile(
    r"(?i:answer(?:\s+is)?)\s*(?::|：)?[\s*_$(\[{]*(?:\\text\{)?([A-J])(?![A-Za-z0-9])"
)
_LONE_LETTER = re.compile(r"[\s(]*(?:\\text\{)?([A-J])\}?[\s).]*")
TIMEOUT_S = 5


def _to_decimal(sign: str | None, digits: str) -> Decimal:
    return Decimal((sign or "") + digits.replace(",", ""))


def numbers_in(text: str) -> list[Decimal]:
    """Every number in `text`, in order: commas, a leading $ and a trailing period are dropped."""
    return [_to_decimal(m.group(1), m.group(2)) for m in _NUMBER.finditer(text)]


def last_number(text: str) -> Decimal | None:
    numbers = numbers_in(text)
    return numbers[-1] if numbers else None


def gsm8k_reference(answer: str) -> Decimal:
    """The number after "#### " in a GSM8K answer field (or the whole field if it has none)."""
    tail = answer.rsplit("####", 1)[-1]
    number = as_number(tail.strip())
    if number is None:
        raise ValueError(f"no final number in GSM8K answer {answer[-40:]!r}")
    return number


def gsm8k_prediction(response: str) -> Decimal | None:
    """The model's GSM8K answer: after the last answer marker if there is one, else the last
    number."""
    markers = list(_MARKER.finditer(response))
    if markers:
        after = numbers_in(response[markers[-1].end() :])
        if after:
            return after[0]
    return last_number(response)


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...}, braces balanced; None if there is none (or it is
    unclosed)."""
    start = text.rfind(_BOXED + "{")
    if start < 0:
        return None
    depth = 0
    open_at = start + len(_BOXED)
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : k].strip()
    return None


def as_number(text: str) -> Decimal | None:
    """`text` as a number if it is nothing but one plain number ("1,000", "$5", "-2.5")."""
    match = _NUMBER.fullmatch(text.strip().rstrip("."))
    if match is None:
        return None
    try:
        return _to_decimal(match.group(1), match.group(2))
    except InvalidOperation:
        return None


def math_equivalent(prediction: str, reference: str) -> bool:
    """Whether two MATH-style answers (LaTeX without delimiters) are equivalent."""
    pred_number, ref_number = as_number(prediction), as_number(reference)
    if pred_number is not None and ref_number is not None:
        return pred_number == ref_number
    from math_verify import parse, verify  # imported when needed: it takes ~0.4 s

    # math-verify's timeouts use SIGALRM, which only the main thread may set.
    timeout = TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    gold = parse(f"${reference}$", parsing_timeout=timeout)
    if not gold:
        return False
    return verify(gold, parse(f"${prediction}$", parsing_timeout=timeout), timeout_seconds=timeout)


def choice_prediction(response: str) -> str | None:
    """The letter after the last answer marker, else a lone letter in the last \\boxed{}."""
    marked = _LETTER_AFTER_MARKER.findall(response)
    if marked:
        return marked[-1]
    boxed = last_boxed(response)
    lone = _LONE_LETTER.fullmatch(boxed) if boxed is not None else None
    return lone.group(1) if lone else None


def gsm8k_answer(response: str) -> str | None:
    return _as_text(gsm8k_prediction(response))


def number_answer(response: str) -> str | None:
    return _as_text(last_number(response))


def _as_text(number: Decimal | None) -> str | None:
    return None if number is None else str(number)


def math_reference(answer: str) -> str:
    return last_boxed(answer) or answer.strip()


def number_reference(answer: str) -> str:
    number = as_number(answer)
    if number is None:
        raise ValueError(f"reference {answer!r} is not a number")
    return str(number)


def choice_reference(answer: str) -> str:
    if _LONE_LETTER.fullmatch(answer) is None:
        raise ValueError(f"reference {answer!r} is not a choice letter A-J")
    return answer.strip()


def same_number(prediction: str, reference: str) -> bool:
    return Decimal(prediction) == Decimal(reference)


def same_text(prediction: str, reference: str) -> bool:
    return prediction == reference


@dataclass(frozen=True)
class AnswerType:
    """How a reasoning set's final answers are scored."""

    name: str  # the value of a set's `answer_type`
    extract: Callable[[str], str | None]  # the model's final answer in a response, or None
    reference: Callable[[str], str]  # a row's answer as `correct` compares it (ValueError: bad)
    correct: Callable[[str, str], bool]  # whether an extracted answer matches the reference
    columns: tuple[str, ...] = ("answer",)  # the prompt rows' fields it needs (strings)


ANSWER_TYPES: dict[str, AnswerType] = {}


def register(answer_type: AnswerType) -> AnswerType:
    """Add `answer_type` to ANSWER_TYPES under its name."""
    if answer_type.name in ANSWER_TYPES:
        raise ValueError(f"answer type '{answer_type.name}' is registered twice")
    ANSWER_TYPES[answer_type.name] = answer_type
    return answer_type


register(AnswerType("gsm8k", gsm8k_answer, lambda a: str(gsm8k_reference(a)), same_number))
register(AnswerType("math", last_boxed, math_reference, math_equivalent))
register(AnswerType("number", number_answer, number_reference, same_number))
register(AnswerType("choice", choice_prediction, choice_reference, same_text))


def answer_type_named(name: str) -> AnswerType:
    """The registered answer type `name`; ValueError naming the registered ones."""
    if name not in ANSWER_TYPES:
        raise ValueError(f"answer_type '{name}': not one of {', '.join(ANSWER_TYPES)}")
    return ANSWER_TYPES[name]


def extract_answer(response: str, answer_type: str) -> str | None:
    """The model's final answer as a string, or None when none can be found."""
    return answer_type_named(answer_type).extract(response)


def reference_answer(answer: str, answer_type: str) -> str:
    """The reference answer in the form `is_correct` compares against."""
    return answer_type_named(answer_type).reference(answer)


def is_correct(prediction: str | None, reference: str, answer_type: str) -> bool:
    """Whether an extracted prediction matches a reference from `reference_answer`."""
    if prediction is None:
        return False
    return answer_type_named(answer_type).correct(prediction, reference)
