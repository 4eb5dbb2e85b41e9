"""Prompt text, cleaned in one place before anything else reads it.

Every prompt a source yields goes through `clean_text` before the empty-prompt check, the ids
and deduplication: Unicode NFC (canonical composition: the same text, one encoding), then every
format character (category Cf: zero-width spaces and joiners, word joiners, bidirectional
marks, soft hyphens, byte-order marks) and every control character but tab, newline and
carriage return (category Cc) removed, then surrounding whitespace stripped. A copy of a
training prompt with an invisible character in it is then the same text, and a prompt made
only of such characters is empty. Text without any of them comes back unchanged (a test holds
every shipped set to that).

Compatibility forms (full-width letters, ligatures, non-breaking spaces, "¾") are kept in the
stored prompt, since NFKC would change what a model reads (GSM8K's "¾" becomes "3⁄4"); the
deduplication key (opsa.data.dedup.normalise) folds them with NFKC, so a full-width copy of a
prompt is still a duplicate.
"""

from __future__ import annotations

import unicodedata

KEPT_CONTROLS = frozenset("\t\n\r")


def invisible(ch: str) -> bool:
    """A format character, or a control character other than tab, newline and return."""
    category = unicodedata.category(ch)
    return category == "Cf" or (category == "Cc" and ch not in KEPT_CONTROLS)


def clean_text(text: str) -> str:
    """NFC, without format and control characters, stripped."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if not invisible(ch)).strip()
