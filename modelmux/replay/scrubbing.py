"""Secrets out of anything modelmux keeps for people to share: a recording is attached to
bug reports and committed as a regression case. Configured secrets (providers' keys,
the gateway's own key, clients' tokens) become their redacted form; anything else that
has the shape of a key (a client token modelmux was never told about, a key a provider
echoes in an error, a `key=` query parameter) becomes REDACTED. Pure: no mitmproxy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from modelmux.config.types import Credential
from modelmux.headers import CREDENTIAL_HEADERS
from modelmux.secrets import SCRUB_MIN_LENGTH, longest_first, scrub

REDACTED = "REDACTED"
# Headers whose whole value is a credential, whatever its shape.
KEY_HEADERS = frozenset({*CREDENTIAL_HEADERS, "cookie", "set-cookie"})
_MARK = "…"  # what redacted() leaves between a label and the last four characters
# Providers' key shapes: Anthropic (sk-ant-), OpenAI and OpenRouter (sk-, sk-proj-,
# sk-or-v1-), Google (AIza + 35), xAI (xai-), Groq (gsk_). The look-behind keeps them
# from matching inside words and base64 (an image's data may contain "AIza").
_SHAPES = re.compile(
    r"(?<![A-Za-z0-9_+/-])(sk-ant-|sk-|xai-|gsk_)(?!(?:ant-)?REDACTED(?![A-Za-z0-9_-]))[A-Za-z0-9_-]{12,}"
    r"|(?<![A-Za-z0-9_+/-])(AIza)[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"
)
# A token after "Bearer", unless it is already a redacted form.
_BEARER = re.compile(r"(?i)\b(bearer\s+)(?![^\s\"',;]*" + _MARK + r")[A-Za-z0-9._~+/=-]{8,}")
# Query parameters that carry keys (Gemini's ?key=, signed URLs' tokens).
KEY_PARAMS = ("key", "api_key", "api-key", "apikey", "access_token", "token")
_QUERY = re.compile(
    r"(?i)([?&;](?:" + "|".join(map(re.escape, KEY_PARAMS)) + r")=)(?!" + REDACTED + r"\b)[^&#\s\"'<>]+"
)


class Scrubber:
    """Replaces the `known` credentials' keys by their redacted form (label and last four
    characters), and key-shaped strings by REDACTED."""

    def __init__(self, known: Iterable[Credential] = ()) -> None:
        # Longest first: a key that contains another must not be half-replaced.
        self.known = longest_first(c for c in known if len(c.secret) >= SCRUB_MIN_LENGTH)

    def text(self, text: str) -> str:
        text = scrub(text, self.known)
        text = _SHAPES.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
        return _QUERY.sub(lambda m: m.group(1) + REDACTED, text)

    def data(self, data: bytes) -> bytes:
        """Bytes that are mostly text; bytes that are not UTF-8 pass through unchanged."""
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def header(self, name: str, value: str) -> str:
        value = self.text(value)
        if name.lower() not in KEY_HEADERS or _MARK in value or value.endswith(REDACTED):
            return value
        scheme, _, token = value.rpartition(" ")  # "Bearer abc" keeps its scheme
        return f"{scheme} {REDACTED}".lstrip() if token else value

    def headers(self, fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(name, self.header(name, value)) for name, value in fields]

    def tree(self, value: Any, key: str = "") -> Any:
        """A JSON-like value (e.g. a flow's metadata) with every string and bytes scrubbed;
        a list under a key ending in "headers" is taken as [name, value] pairs."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.data(value)
        if isinstance(value, dict):
            return {k: self.tree(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            if key.endswith("headers") and all(_is_pair(item) for item in value):
                return [[name, self._header_value(name, v)] for name, v in value]
            return [self.tree(item) for item in value]
        return value

    def _header_value(self, name: str | bytes, value: str | bytes) -> str | bytes:
        scrubbed = self.header(_text(name), _text(value))
        return scrubbed.encode("utf-8", "surrogateescape") if isinstance(value, bytes) else scrubbed


def _is_pair(item: Any) -> bool:
    return isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(x, str | bytes) for x in item)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
