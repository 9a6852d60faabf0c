"""A model's output limit and context window, as an upstream's refusal of an absurd
`max_tokens` names them. Pure.

The output limit, by who words it so (each seen in users' reports of the refusal):
- OpenAI: "max_tokens is too large: 100000000. This model supports at most 16384
  completion tokens, whereas you provided 100000000."
- DeepSeek: "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]".
- Groq: "`max_tokens` must be less than or equal to `32768`, the maximum value for
  `max_tokens` is less than the `context_window` for this model".
- Volcengine (Doubao): "... integer above maximum value, expected a value <= 12288".
- Anthropic: "max_tokens: 100000000 > 64000, which is the maximum allowed number of
  output tokens for claude-sonnet-4-5".
- Gemini: "... maxOutputTokens value of 100000000 but the supported range is from 1
  (inclusive) to 65537 (exclusive)".

vLLM and older OpenAI models answer with the context window instead ("This model's
maximum context length is 4096 tokens. However, you requested 100000012 tokens"),
which overflow.py reads.
"""

from __future__ import annotations

import re

from modelmux.translate.overflow import overflow

_OUTPUT = (
    r"at most (\d+) completion tokens",
    r"valid range of \S+ is \[\s*\d+\s*,\s*(\d+)\s*\]",
    r"less than or equal to\W{0,3}(\d+)",
    r"(?:<=|≤)\s*(\d+)",
    r"> (\d+), which is the maximum",
)
_EXCLUSIVE = r"from \d+ \(inclusive\) to (\d+) \(exclusive\)"


def max_output(message: str, asked: int) -> int | None:
    """The most output tokens `message` (a refusal of `asked`) says the model takes."""
    for pattern in _OUTPUT:
        if (found := re.search(pattern, message, re.IGNORECASE)) and int(found.group(1)) != asked:
            return int(found.group(1))
    if found := re.search(_EXCLUSIVE, message, re.IGNORECASE):
        return int(found.group(1)) - 1
    return None


def context_window(message: str) -> int | None:
    """The context window a refusal names, in any wording overflow.py knows."""
    found = overflow(message)
    return found.limit if found is not None else None
