"""Context overflows in each provider's words → Anthropic's, which Claude Code compacts on
(or, for the output not fitting, retries with less max_tokens)."""

from __future__ import annotations

import json

import pytest

from modelmux.config.types import Auth, Credential, Provider
from modelmux.errors import GatewayError
from modelmux.attempt.exchange import failed_answer, upstream_failure
from modelmux.translate.overflow import overflow, restated

OPENAI = "This model's maximum context length is 128000 tokens. However, your messages resulted in 210000 tokens. Please reduce the length of the messages."  # noqa: E501
OPENAI_COMPLETION = ("This model's maximum context length is 131072 tokens. However, you requested 131134 tokens (122942 in the "
                     "messages, 8192 in the completion). Please reduce the length of the messages or completion.")
OPENAI_FUNCTIONS = ("This model's maximum context length is 8192 tokens. However, you requested 8213 tokens (6683 in the "
                    "messages, 730 in the functions, and 800 in the completion). Please reduce the length of the messages, "
                    "functions, or completion.")
RESPONSES = "Your input exceeds the context window of this model. Please adjust your input and try again."
VLLM_OUTPUT = ("'max_tokens' or 'max_completion_tokens' is too large: 32000. This model's maximum context length is "
               "100001 tokens and your request has 81126 input tokens (32000 > 100001 - 81126).")
OPENROUTER = ("This endpoint's maximum context length is 32768 tokens. However, you requested about 42832 tokens (42832 "
              "of text input). Please reduce the length of either one, or use the \"middle-out\" transform to compress "
              "your prompt automatically.")
GEMINI = "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576)."
ZAI = "API 调用参数有误，请检查文档。Request 182387 input tokens exceeds the model's maximum context length 202750"
KIMI = "Invalid request: Your request exceeded model token limit: 262144 (requested: 269030)"
MINIMAX = "invalid params, context window exceeds limit (2013)"


@pytest.mark.parametrize("message, code, words", [
    (OPENAI, "context_length_exceeded", "prompt is too long: 210000 tokens > 128000 maximum"),
    (OPENAI_COMPLETION, "invalid_request_error", "input length and `max_tokens` exceed context limit: 122942 + 8192 > "
                                                 "131072, decrease input length or `max_tokens` and try again"),
    (OPENAI_FUNCTIONS, None, "input length and `max_tokens` exceed context limit: 7413 + 800 > 8192, decrease input "
                             "length or `max_tokens` and try again"),  # the functions count as input
    (RESPONSES, "context_length_exceeded", "prompt is too long"),
    ("The request is too big for this model.", "context_length_exceeded", "prompt is too long"),  # by its code alone
    (VLLM_OUTPUT, None, "input length and `max_tokens` exceed context limit: 81126 + 32000 > 100001, decrease input "
                        "length or `max_tokens` and try again"),
    (OPENROUTER, None, "prompt is too long: 42832 tokens > 32768 maximum"),
    (GEMINI + " (INVALID_ARGUMENT)", None, "prompt is too long: 1200293 tokens > 1048576 maximum"),
    (ZAI, "1210", "prompt is too long"),  # its input count is under the limit: the output it counts in is not said
    (KIMI, None, "prompt is too long: 269030 tokens > 262144 maximum"),
    (MINIMAX, None, "prompt is too long"),  # (2013) is MiniMax's error code, not a count
])  # fmt: skip
def test_each_providers_wording_in_anthropics(message, code, words):
    found = overflow(message, code)
    assert found is not None and found.words() == words


@pytest.mark.parametrize("message, code", [
    ("prompt is too long: 210000 tokens > 200000 maximum", None),  # Anthropic's own: already what Claude Code reads
    ("input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or "
     "`max_tokens` and try again", None),
    ("Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29000, Requested 5000.", "rate_limit_exceeded"),
    ("max_tokens: 128001 > 64000, which is the maximum allowed number of output tokens", None),
    ("Invalid 'messages[1].content': string too long.", "string_above_max_length"),
])  # fmt: skip
def test_other_failures_are_not_overflows(message, code):
    assert overflow(message, code) is None


def test_restated_is_a_400_with_the_upstreams_words_after_anthropics():
    error = restated(GatewayError(413, f"provider 'oai' answered HTTP 413: {OPENAI}", headers={"x": "1"}))
    assert (error.status, error.error_type, error.headers) == (400, "invalid_request_error", {"x": "1"})
    assert error.message == f"prompt is too long: 210000 tokens > 128000 maximum; provider 'oai' answered HTTP 413: {OPENAI}"
    server = GatewayError(500, OPENAI)
    assert restated(server) is server  # a server error is not the request's fault, whatever it says


KEY = Credential("main", "sk-secret-aaaaaaaaaaaa-0001")


def provider(protocol: str) -> Provider:
    return Provider("p", protocol, "https://vendor.example/v1", Auth("authorization", "Bearer {key}"), (KEY,))


def openai_body(message: str, code: str | None) -> str:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": "messages", "code": code}})


@pytest.mark.parametrize("protocol, text, message", [
    ("openai-chat", openai_body(OPENAI, "context_length_exceeded"),
     f"prompt is too long: 210000 tokens > 128000 maximum; provider 'p' answered HTTP 400 Bad Request: {OPENAI}"),
    ("openai-responses", openai_body(RESPONSES, "context_length_exceeded"),
     f"prompt is too long; provider 'p' answered HTTP 400 Bad Request: {RESPONSES}"),
    ("gemini", json.dumps({"error": {"code": 400, "message": GEMINI, "status": "INVALID_ARGUMENT"}}),
     f"prompt is too long: 1200293 tokens > 1048576 maximum; provider 'p' answered HTTP 400: {GEMINI} (INVALID_ARGUMENT)"),
    ("anthropic", json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": MINIMAX}}),
     f"prompt is too long; {MINIMAX}"),
    ("anthropic", json.dumps({"type": "error", "error": {"message": ZAI, "code": "1210"}}),  # z.ai: no type
     f"prompt is too long; provider 'p' answered HTTP 400 Bad Request: {ZAI}"),
    ("anthropic", openai_body(OPENAI_COMPLETION, "invalid_request_error"),  # DeepSeek's Anthropic endpoint
     "input length and `max_tokens` exceed context limit: 122942 + 8192 > 131072, decrease input length or "
     f"`max_tokens` and try again; provider 'p' answered HTTP 400 Bad Request: {OPENAI_COMPLETION}"),
])  # fmt: skip
def test_an_upstream_400_that_says_overflow_is_answered_in_anthropics_words(protocol, text, message):
    status, body, _ = upstream_failure(provider(protocol), 400, "Bad Request", text)
    assert (status, json.loads(body)) == (400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})


def test_anthropics_own_overflow_passes_as_it_came():
    text = json.dumps({"type": "error", "error": {"type": "invalid_request_error",
                                                  "message": "prompt is too long: 210000 tokens > 200000 maximum"}})
    assert upstream_failure(provider("anthropic"), 400, "Bad Request", text) == (400, text.encode(), {})


def test_a_whole_answer_that_failed_for_its_length_is_restated_without_the_key():
    """Whole answers (a Responses `status: failed`) leave through exchange.failed_answer."""
    error = GatewayError(400, f"the upstream failed: {RESPONSES} ({KEY.secret})", code="context_length_exceeded")
    assert failed_answer("p", error, [KEY]).message == (
        f"prompt is too long; provider 'p' answered: the upstream failed: {RESPONSES} (main…0001)")


def test_anthropics_own_answers_are_never_reworded():
    """Passthrough (or a key at Anthropic's own host): Claude Code reads Anthropic's errors itself."""
    text = json.dumps({"type": "error", "error": {"type": "request_too_large",
                                                  "message": "Request exceeds the model's context window"}})
    for own in (Provider("claude", "anthropic", "https://api.anthropic.com", None),
                Provider("claude", "anthropic", "https://api.anthropic.com", Auth("x-api-key", "{key}"), (KEY,))):
        assert upstream_failure(own, 413, "Payload Too Large", text) == (413, text.encode(), {})
