"""How secrets appear where people read: a credential redacted to its label and last
four characters, keys scrubbed out of what an upstream or a client wrote. Which
credential serves a request is pools.py's job, and addons/credentials.py's."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping

from modelmux.config.types import Config, Credential, Provider
from modelmux.headers import CREDENTIAL_HEADERS, every_token

# Shorter "keys" are test placeholders; replacing them would mangle ordinary words.
SCRUB_MIN_LENGTH = 8
# What records name instead of a credential's label when a request went without one.
# Labels have no spaces (routes.schema.json), so neither can be taken for one.
CLIENT_TOKEN = "client token"  # passthrough: the client's own
NO_CREDENTIAL = "no credential"  # auth: none


def label_of(provider: Provider, credential: Credential | None) -> str:
    """How the dashboard, the log and usage records name the credential a request was sent with."""
    if credential is not None:
        return credential.label
    return NO_CREDENTIAL if provider.keyless else CLIENT_TOKEN


def configured(config: Config, gateway: str = "gateway key") -> list[Credential]:
    """Every secret routes.yaml holds: each provider's (Provider.secrets), and the gateway's
    keys (server.api_key and each of server.api_keys), labelled `gateway` and `gateway LABEL`."""
    secrets = [c for provider in config.providers.values() for c in provider.secrets]
    if config.server.api_key:
        secrets.append(Credential(gateway, config.server.api_key))
    secrets += [Credential(f"{gateway} {key.label}", key.key) for key in config.server.api_keys]
    return secrets


def fingerprint(secret: str) -> str:
    """A secret as a short digest that cannot be turned back into it: tells a replaced key
    from the old one under the same label (the state file), and the client's logins apart."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def redacted(credential: Credential) -> str:
    """How a credential may appear anywhere a person can read: label and last four characters."""
    secret = credential.secret
    return f"{credential.label}…{secret[-4:]}" if len(secret) > SCRUB_MIN_LENGTH else f"{credential.label}…"


def longest_first(credentials: Iterable[Credential]) -> list[Credential]:
    """`credentials` in the order to scrub them: a secret that contains another must not
    be half-replaced."""
    return sorted(credentials, key=lambda c: -len(c.secret))


def scrub(text: str, credentials: Iterable[Credential]) -> str:
    """`text` with every credential's secrets (a key, or an oauth credential's tokens)
    replaced by its redacted form (upstreams sometimes echo the key they rejected)."""
    for credential in credentials:
        for secret in credential.secrets():
            if len(secret) >= SCRUB_MIN_LENGTH and secret in text:
                text = text.replace(secret, redacted(credential))
    return text


def scrub_bytes(data: bytes, credentials: Iterable[Credential]) -> bytes:
    """scrub() for bodies, which are kept as bytes."""
    return Scrubbing(credentials).bytes(data)


class Scrubbing:
    """The secrets of a set of credentials as bytes to look for, worked out once: an
    answer is looked at several times (its head, then its body), and most hold no
    secret. Each secret long enough to scrub, longest first (a longer secret may hold a
    shorter one), with the first credential that has it; a redacted form is made only
    for a secret found."""

    def __init__(self, credentials: Iterable[Credential]) -> None:
        found: dict[bytes, Credential] = {}
        for credential in credentials:
            for secret in credential.secrets():
                if len(secret) >= SCRUB_MIN_LENGTH:
                    found.setdefault(secret.encode(), credential)
        self.secrets = sorted(found.items(), key=lambda item: -len(item[0]))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def found_in(self, data: bytes) -> bool:
        for secret, _ in self.secrets:
            if secret in data:
                return True
        return False

    def bytes(self, data: bytes) -> bytes:
        for secret, credential in self.secrets:
            if secret in data:
                data = data.replace(secret, redacted(credential).encode())
        return data

    def credentials(self) -> list[Credential]:
        """Its credentials, longest secret first, each once."""
        return list(dict.fromkeys(credential for _, credential in self.secrets))


class StreamScrubber:
    """scrub_bytes() for a body that comes in pieces (feed, then close), such as an event
    stream: a secret cut between two pieces is still found. The end of a piece is held
    back only while it could be the start of a secret, so a stream whose pieces end in a
    blank line passes on as it comes. One regex pass a piece: streams are hot."""

    def __init__(self, secrets: Scrubbing) -> None:
        self.shown = {secret: redacted(credential).encode() for secret, credential in secrets.secrets}
        longest_first = tuple(self.shown)  # as Scrubbing orders them
        self.pattern = _alternatives(longest_first) if self.shown else None
        self.longest = len(longest_first[0]) if self.shown else 0
        self.starts = {secret[0] for secret in self.shown}
        # The bytes an unfinished beginning of a secret may end in: a piece ending in any
        # other (an event's blank line) holds nothing back, without a look at its end.
        self.inner = set(b"".join(secret[:-1] for secret in self.shown))
        self.held = b""
        shown = self.shown
        self._shown = lambda found: shown[found.group()]  # made once: feed runs on every piece

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.pattern is None:
            return [chunk] if chunk else []
        data = self.pattern.sub(self._shown, self.held + chunk if self.held else chunk)
        if data and data[-1] not in self.inner:  # what _unfinished would find at once: nothing to hold
            self.held = b""
            return [data]
        cut = self._unfinished(data)
        data, self.held = data[:cut], data[cut:]
        return [data] if data else []

    def close(self) -> list[bytes]:
        rest, self.held = self.held, b""
        return [rest] if rest else []

    @functools.cached_property
    def beginnings(self) -> set[bytes]:
        """Every unfinished beginning of a secret; built only when a piece's end may be one."""
        return {secret[:n] for secret in self.shown for n in range(1, len(secret))}

    def _unfinished(self, data: bytes) -> int:
        """Where the longest end of `data` that begins a secret starts (len(data): none)."""
        if not data or data[-1] not in self.inner:
            return len(data)
        for at in range(max(0, len(data) - self.longest + 1), len(data)):
            if data[at] in self.starts and data[at:] in self.beginnings:
                return at
        return len(data)


@functools.lru_cache(maxsize=64)
def _alternatives(secrets: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """One regex for `secrets`, built once per set of them: escaping twenty keys for
    every stream cost 0.15 ms."""
    return re.compile(b"|".join(map(re.escape, secrets)))


def redacted_token(value: str) -> str:
    """A client's own token as a record may keep it: `Bearer client…last4`."""
    scheme, _, token = value.rpartition(" ")
    return f"{scheme} {redacted(Credential('client', token))}".lstrip()


def shown_headers(
    headers: Iterable[tuple[str, str] | list[str]], auth_header: str | None, credential: Credential | None,
    secrets: Iterable[Credential] = (),
) -> list[list[str]]:
    """Request headers as a record may keep them: the credential in `auth_header`
    redacted, `secrets` (a provider's written into its headers) wherever they are, and
    every other header a client puts a token in (passthrough sends them on)."""
    shown = []
    secrets = list(secrets)
    for name, value in headers:
        lower = name.lower()
        value = scrub(value, secrets)
        if credential is not None and lower == auth_header:
            value = value.replace(credential.secret, redacted(credential))
        elif lower in CREDENTIAL_HEADERS and "…" not in value:
            value = redacted_token(value)
        shown.append([name, value])
    return shown


def client_credentials(headers: Mapping[str, str]) -> list[Credential]:
    """The client's own tokens, from every header it may put one in (`headers` by
    lowercase name), to scrub from an upstream's answer that quotes them: on a
    passthrough route, the upstream got them."""
    return [Credential("client", token) for token in every_token(headers)]
