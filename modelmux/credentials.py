"""Which of a provider's credentials a request is sent with.

A provider's credentials are only ever read from that provider's own list, so one
provider's key cannot serve another's request by construction. Cooldowns, strategies
and failover build on this (the credential-pools issue).
"""

from __future__ import annotations

from collections.abc import Iterable

from modelmux.config import Credential, Provider


class RoundRobin:
    """Hands out each provider's credentials in turn."""

    def __init__(self) -> None:
        self._turn: dict[str, int] = {}

    def pick(self, provider: Provider) -> Credential | None:
        """The next credential of `provider`; None for passthrough (the client's own token)."""
        if provider.passthrough or not provider.credentials:
            return None
        turn = self._turn.get(provider.name, 0)
        self._turn[provider.name] = turn + 1
        return provider.credentials[turn % len(provider.credentials)]


# Shorter "keys" are test placeholders; replacing them would mangle ordinary words.
SCRUB_MIN_LENGTH = 8


def redacted(credential: Credential) -> str:
    """How a credential may appear anywhere a person can read: label and last four characters."""
    return f"{credential.label}…{credential.key[-4:]}" if len(credential.key) > SCRUB_MIN_LENGTH else f"{credential.label}…"


def scrub(text: str, credentials: Iterable[Credential]) -> str:
    """`text` with every credential's key replaced by its redacted form (upstreams
    sometimes echo the key they rejected)."""
    for credential in credentials:
        if len(credential.key) >= SCRUB_MIN_LENGTH and credential.key in text:
            text = text.replace(credential.key, redacted(credential))
    return text
