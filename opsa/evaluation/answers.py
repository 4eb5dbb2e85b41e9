"""Final-answer extraction and equivalence for reasoning sets.

Four answer types (code sets are scored by running tests instead: `programs`, `code_grading`):
- "gsm8k": the reference follows "#### "; the model's answer is the first number after the last
  "####" or "answer is" marker, else the last number in the response.
- "math": the model's answer is the content of the last \\boxed{...}; equivalence is decided by
  math-verify, except that two plain numbers compare numerically.
- "number": the last number in the response must equal the reference.
- "choice": a multiple-choice letter; the model's is the one after the last "Answer:" (or
  "answer is"), else the content of the last \\boxed{...} when that is a lone letter.
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal, InvalidOperation

from math_verify import parse, verify

ANSWER_TYPES = ("gsm8k", "math", "number", "choice")

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


def extract_answer(response: str, answer_type: str) -> str | None:
    """The model's final answer as a string, or None when none can be found."""
    if answer_type == "math":
        return last_boxed(response)
    if answer_type == "choice":
        return choice_prediction(response)
    number = gsm8k_prediction(response) if answer_type == "gsm8k" else last_number(response)
    return None if number is None else str(number)


def reference_answer(answer: str, answer_type: str) -> str:
    """The reference answer in the form `is_correct` compares against."""
    if answer_type == "gsm8k":
        return str(gsm8k_reference(answer))
    if answer_type == "math":
        return last_boxed(answer) or answer.strip()
    if answer_type == "choice":
        if _LONE_LETTER.fullmatch(answer) is None:
            raise ValueError(f"reference {answer!r} is not a choice letter A-J")
        return answer.strip()
    number = as_number(answer)
    if number is None:
        raise ValueError(f"reference {answer!r} is not a number")
    return str(number)


def is_correct(prediction: str | None, reference: str, answer_type: str) -> bool:
    """Whether an extracted prediction matches a reference from `reference_answer`."""
    if prediction is None:
        return False
    if answer_type == "math":
        return math_equivalent(prediction, reference)
    if answer_type == "choice":
        return prediction == reference
    return Decimal(prediction) == Decimal(reference)
