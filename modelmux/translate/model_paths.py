"""Model names that go into an upstream's URL path, checked before they get there. Pure.

Gemini names the model in its path (`/models/{model}:generateContent`), and so does an
`endpoint` with `{model}` (Azure's `/openai/deployments/{model}/chat/completions`).
Put there as written, the model `gem,../../admin/secret?x=` was sent as
`POST /v1beta/models/../../admin/secret?x=:generateContent` with the provider's key,
and a space broke the request line. So a name bound for a path must be one path
segment made of URL-unreserved characters (RFC 3986 §2.3) that starts with a letter
or digit: it can be no dot-segment (`..`, RFC 3986 §5.2.4), no query or fragment, and
no `:` that Gemini would read as the method. Every Gemini model name, Azure deployment
name (letters, digits, `-`, `_`, `.`) and Vertex model id fits. It is percent-encoded
all the same, which leaves such a name as it is.

Names that only go into a JSON body (Anthropic, and OpenAI's protocols without
`{model}` in the endpoint) keep slashes, colons and parentheses:
`accounts/fireworks/models/llama-v3p1-70b-instruct`, `qwen3-coder:30b`. The client's
name is checked at the edge for control characters (validation.py).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from modelmux.config.types import Config, Provider
from modelmux.translate import effort, effort_checks
from modelmux.translate.registry import PROTOCOLS

PATH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")
ALLOWED = "letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 256)"


def in_path(provider: Provider) -> bool:
    """Whether `provider` puts the model in its URL path."""
    return PROTOCOLS[provider.protocol].model_in_path or "{model}" in (provider.shape.endpoint or "")


def problem(model: str) -> str | None:
    """Why `model` cannot go into a URL path; None when it can."""
    return None if PATH_NAME.fullmatch(model) else f"a model name in a URL path may only hold {ALLOWED}"


def segment(model: str) -> str:
    """`model` as one path segment; ValueError (problem()) for a name that cannot be one."""
    if (why := problem(model)) is not None:
        raise ValueError(why)
    return quote(model, safe="")


def problems(config: Config) -> list[str]:
    """Every model name routes.yaml sends a provider that puts it into its URL path
    (effort_checks.sent) but cannot go there, once each."""
    found: dict[tuple[str, str], str] = {}
    for where, model, provider in effort_checks.sent(config):
        name = effort.of(model)[0]  # NAME(EFFORT): only NAME is sent
        if in_path(provider) and (why := problem(name)) is not None:
            found.setdefault((name, provider.name), f"{where}: '{name}' goes into provider '{provider.name}''s URL "
                                                    f"path, but {why}")
    return list(found.values())
