"""Headers: what the launcher makes Claude Code send (the gateway reads them and never
lets them reach an upstream), which of a client's headers carry secrets, and which of
them each upstream gets (docs/forwarding.md). Pure."""

from collections.abc import Mapping

from modelmux import __version__

PROFILE_HEADER = "x-modelmux-profile"
KEY_HEADER = "x-modelmux-key"
OWN_HEADER_PREFIX = "x-modelmux-"
CLIENT_AUTH_HEADERS = ("authorization", "x-api-key")  # where Anthropic clients send their token
# Every request header a client may put a secret in: Anthropic's two, Google's and Azure
# OpenAI's key headers (a client written for them sends its key there), the gateway's own
# key, and a proxy's credentials. None of them ever reaches a provider that has a
# credential of its own, and the record shows each redacted.
CREDENTIAL_HEADERS = (*CLIENT_AUTH_HEADERS, "x-goog-api-key", "api-key", KEY_HEADER, "proxy-authorization")

# What a third-party upstream (any but Anthropic itself) gets of the client's headers is
# its protocol's `forwarded` (translate.protocol.Protocol); modelmux sets the credential, its
# own user agent and the provider's `headers:` from routes.yaml. The rest stays here:
# Claude Code's identity (its user-agent, x-app, X-Claude-Code-Session-Id), its SDK's
# telemetry (x-stainless-*), custom headers. Framing headers (host, content-length, ...)
# belong to the hop and are left to the sender.
# Betas that describe the client's own Anthropic login (Claude Code adds oauth-2025-04-20
# when it sends a subscription token); a vendor gets its own key instead, so never these.
LOGIN_BETA_PREFIX = "oauth-"
USER_AGENT = f"modelmux/{__version__}"


def token_of(value: str) -> str:
    """A credential header's token without its auth scheme: `Bearer`, in any case (RFC
    9110 §11.1: schemes are case-insensitive)."""
    scheme, sep, rest = value.strip().partition(" ")
    return rest.strip() if sep and scheme.lower() == "bearer" else value.strip()


def client_tokens(headers: Mapping[str, str]) -> dict[str, str]:
    """The token a client sent in each of CLIENT_AUTH_HEADERS ("" where absent), without
    the Bearer scheme."""
    return {name: token_of(headers.get(name, "")) for name in CLIENT_AUTH_HEADERS}


def every_token(headers: Mapping[str, str]) -> list[str]:
    """Every token the client sent, in any of CREDENTIAL_HEADERS: what an upstream's echo
    of it is scrubbed of."""
    tokens = (token_of(headers.get(name, "")) for name in CREDENTIAL_HEADERS)
    return list(dict.fromkeys(token for token in tokens if token))


def vendor_betas(value: str) -> str:
    """A client's anthropic-beta list as an Anthropic-compatible vendor gets it: without
    the betas that describe the client's own login."""
    return ",".join(b.strip() for b in value.split(",") if b.strip() and not b.strip().startswith(LOGIN_BETA_PREFIX))


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
