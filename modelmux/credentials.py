"""How credentials appear where people read: redacted to their label and last four
characters. Which credential serves a request is pools.py's job."""

from __future__ import annotations

from collections.abc import Iterable

from modelmux.config import Credential

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
