"""What the launcher and the gateway agree on: the launcher makes Claude Code send
these, the gateway reads them and never lets them reach an upstream."""

from collections.abc import Mapping

PROFILE_HEADER = "x-modelmux-profile"
KEY_HEADER = "x-modelmux-key"
OWN_HEADER_PREFIX = "x-modelmux-"
CLIENT_AUTH_HEADERS = ("authorization", "x-api-key")  # where Anthropic clients send their token


def client_tokens(headers: Mapping[str, str]) -> dict[str, str]:
    """The token a client sent in each of CLIENT_AUTH_HEADERS ("" where absent), without
    the Bearer scheme."""
    return {
        "x-api-key": headers.get("x-api-key", ""),
        "authorization": headers.get("authorization", "").removeprefix("Bearer ").strip(),
    }


# Anthropic's credential formats: a Claude subscription login's access token (Claude
# Code sends it as `Authorization: Bearer`) and an API key (sent as `x-api-key`).
SUBSCRIPTION_PREFIX = "sk-ant-oat"
API_KEY_PREFIX = "sk-ant-api"


def client_credential(headers: Mapping[str, str]) -> str | None:
    """Which Anthropic credential the client sent: "subscription", "api-key", or None
    for anything else (no token, modelmux's placeholder, some other service's key)."""
    tokens = client_tokens(headers).values()
    for kind, prefix in (("subscription", SUBSCRIPTION_PREFIX), ("api-key", API_KEY_PREFIX)):
        if any(token.startswith(prefix) for token in tokens):
            return kind
    return None


# Claude Code needs *a* token to skip its login when every provider of a profile has
# its own credentials or takes none (auth: none); the gateway removes it and refuses
# to pass it to Anthropic.
PLACEHOLDER_TOKEN = "modelmux-placeholder"
