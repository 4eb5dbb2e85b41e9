"""Guard-model prompt templates: text files in opsa/judges/templates/ with placeholders.

A template holds `{prompt}` and `{response}` (the judged pair) and may start with `{bos}`
(the judge tokenizer's BOS token: prompts are encoded without special tokens, so raw formats
must carry it themselves). Placeholders are filled in one pass, so braces or placeholder-like
text inside a prompt or response stay as they are.

A raw template is the judge model's whole input, in the format the classifier was trained on.
A chat template (`chat=True`) is filled, then sent as one user turn through the judge model's
own chat template, for general instruction-tuned models used as judges.

`max_response_tokens` keeps only the response's first tokens (in the judge's tokenizer), for
classifiers with a short context (HarmBench's classifier is run on the first 512).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from opsa.errors import InputError
from opsa.judges.base import JudgeItem
from opsa.prompting.chat import render_user

TEMPLATES = Path(str(files("opsa.judges") / "templates"))
_PLACEHOLDER = re.compile(r"\{(bos|prompt|response)\}")


@dataclass(frozen=True)
class PromptTemplate:
    path: Path
    text: str
    chat: bool
    max_response_tokens: int | None = None

    @classmethod
    def load(
        cls, name: str | Path, chat: bool, max_response_tokens: int | None = None
    ) -> PromptTemplate:
        """A file name in opsa/judges/templates/ or a path to a template file."""
        path = Path(name)
        if not path.is_file():
            path = TEMPLATES / name
        if not path.is_file():
            raise InputError(
                f"{name}: judge template not found (neither a path nor in {TEMPLATES})"
            )
        text = path.read_text(encoding="utf-8")
        for key in ("{prompt}", "{response}"):
            if key not in text:
                raise InputError(f"{path}: judge template lacks the placeholder {key}")
        return cls(path, text, chat, max_response_tokens)

    def render(self, tokenizer: Any, item: JudgeItem) -> str:
        bos = "" if self.chat else (tokenizer.bos_token or "")
        response = self._truncate(tokenizer, item.response)
        values = {"bos": bos, "prompt": item.prompt, "response": response}
        filled = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.text)
        return render_user(tokenizer, filled) if self.chat else filled

    def _truncate(self, tokenizer: Any, response: str) -> str:
        if self.max_response_tokens is None:
            return response
        ids = tokenizer.encode(response, add_special_tokens=False)
        if len(ids) <= self.max_response_tokens:
            return response
        return tokenizer.decode(ids[: self.max_response_tokens], skip_special_tokens=True)
