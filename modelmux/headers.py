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
# Claude Code needs *a* token to skip its login when every provider of a profile has
# its own credentials; the gateway removes it and refuses to pass it to Anthropic.
PLACEHOLDER_TOKEN = "modelmux-placeholder"
