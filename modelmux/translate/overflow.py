"""Context overflow: an upstream saying the conversation no longer fits its model,
restated in the words Claude Code acts on. Pure.

Claude Code (2.1.197, read in its bundled cli) compacts the conversation when an
API error's message contains "prompt is too long", and reads how far over it is from
"prompt is too long: N tokens > M" (Anthropic's own error says "prompt is too long:
210000 tokens > 200000 maximum"). When a 400 says "input length and `max_tokens`
exceed context limit: I + O > L" it retries at once with max_tokens lowered to fit.
Any other wording is only shown, and a long session on another provider dead-ends.
So an upstream's own wording of the same failure gets Anthropic's in front, as a 400
invalid_request_error, and keeps its own text after it.

The wordings recognised, by who sends them:
- OpenAI Chat and Responses: code `context_length_exceeded`; "This model's maximum
  context length is 128000 tokens. However, your messages resulted in 210000 tokens",
  or "... you requested 4128 tokens (2128 in the messages, 2000 in the completion)";
  newer models "Your input exceeds the context window of this model". DeepSeek (its
  OpenAI and Anthropic endpoints) and Azure answer OpenAI's wording.
- vLLM: "... maximum context length is 4096 tokens and your request has 3500 input
  tokens" ("'max_tokens' or 'max_completion_tokens' is too large: 1000" when the
  output is what does not fit).
- OpenRouter: "This endpoint's maximum context length is 32768 tokens. However, you
  requested about 42832 tokens".
- Gemini (INVALID_ARGUMENT): "The input token count (1200293) exceeds the maximum
  number of tokens allowed (1048576)."
- Anthropic-compatible vendors: z.ai "Request 182387 input tokens exceeds the model's
  maximum context length 202750"; Moonshot (Kimi) "Your request exceeded model token
  limit: 262144 (requested: 269030)"; MiniMax "context window exceeds limit (2013)"
  (2013 is an error code, not a count).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelmux.errors import GatewayError

CODE = "context_length_exceeded"
# Any of these says the request does not fit the model's context window.
_SIGNS = re.compile(
    r"maximum context length|context window|context_length_exceeded|exceeded model token limit"
    r"|exceeds the maximum number of tokens allowed",
    re.IGNORECASE,
)
# Already Claude Code's words (Anthropic's own answer, passed through): left as it is.
_ANTHROPIC = re.compile(r"prompt is too long|input length and `max_tokens` exceed context limit", re.IGNORECASE)
_LIMIT = (
    r"maximum context length (?:is )?(\d+)",
    r"exceeded model token limit: (\d+)",
    r"maximum number of tokens allowed \((\d+)\)",
)
_INPUT = (
    r"your messages resulted in (\d+) tokens",
    r"(\d+) in the messages",
    r"your request has (\d+) input tokens",
    r"you requested about (\d+) tokens",
    r"request (\d+) input tokens",
    r"\(requested: (\d+)\)",
    r"input token count \((\d+)\)",
)
_FUNCTIONS = r"(\d+) in the functions"  # counted into the input beside the messages
_OUTPUT = (r"(\d+) in the completion", r"is too large: (\d+)")


@dataclass(frozen=True)
class Overflow:
    """What the upstream said: the prompt's tokens (with the output it counted in, when
    it says so) against the model's limit; None where it gave no number."""

    input: int | None
    output: int | None
    limit: int | None

    def words(self) -> str:
        """Anthropic's wording: the output not fitting beside a prompt that does is the
        case Claude Code fixes by asking for less output. Numbers only where they add up:
        z.ai counts the output in without saying how much ("Request 182387 input tokens
        exceeds ... 202750")."""
        if self.input is not None and self.limit is not None:
            if self.output is not None and self.input < self.limit:
                return (f"input length and `max_tokens` exceed context limit: {self.input} + {self.output} > "
                        f"{self.limit}, decrease input length or `max_tokens` and try again")
            if self.input > self.limit:
                return f"prompt is too long: {self.input} tokens > {self.limit} maximum"
        return "prompt is too long"


def overflow(message: str, code: str | None = None) -> Overflow | None:
    """The overflow `message` (with the upstream's error `code`) reports; None when it
    reports another failure, or already says it in Anthropic's words."""
    if _ANTHROPIC.search(message) or not (code == CODE or _SIGNS.search(message)):
        return None
    output = _number(message, _OUTPUT)
    functions = _number(message, (_FUNCTIONS,))
    found = _number(message, _INPUT)
    total = re.search(r"you requested about (\d+) tokens", message, re.IGNORECASE)
    if found is not None and total is not None and output is not None:
        found -= output  # OpenRouter's "about" counts the output in
    return Overflow(None if found is None else found + (functions or 0), output, _number(message, _LIMIT))


def restated(error: GatewayError) -> GatewayError:
    """`error` with Anthropic's wording in front when it is a context overflow (a 400
    invalid_request_error, whatever status the upstream gave it), else unchanged."""
    if error.status >= 500 or (found := overflow(error.message, error.code)) is None:
        return error
    return GatewayError(400, f"{found.words()}; {error.message}", "invalid_request_error", error.headers, error.code)


def _number(message: str, patterns: tuple[str, ...]) -> int | None:
    for pattern in patterns:
        if found := re.search(pattern, message, re.IGNORECASE):
            return int(found.group(1))
    return None
