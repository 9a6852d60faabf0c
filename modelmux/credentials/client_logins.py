"""The client's own logins on passthrough routes: the quota each one's answers last named.

Most people run modelmux with Claude Code's own Claude subscription passed through
(`auth: passthrough`): no pool credential, but Anthropic answers that login with the
same unified rate-limit headers (quota.py). A login is known by the fingerprint of its
token (secrets.fingerprint), never the token, so the snapshot, /metrics and the state
file can name it; only the most recently heard few are kept, since Claude Code's
subscription token changes with every refresh and each new one is another login here.

Pure: pools.py keeps one Logins beside the pools, and the state file keeps it across
restarts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from modelmux.credentials.quota import Quota
from modelmux.headers import client_credential, client_tokens
from modelmux.secrets import fingerprint

# Logins kept, the most recently heard: a person has one or two; refreshed tokens add more.
MAX_LOGINS = 8


class Login(NamedTuple):
    """One login of the client's, as it may be shown."""

    provider: str
    fingerprint: str  # of its token
    kind: str | None  # headers.client_credential: "subscription", "api-key", None for another token
    quota: Quota  # what its last answer that named one said


def token_of(client: Mapping[str, str]) -> str | None:
    """The token the client's login sends upstream on passthrough (its headers by lowercase
    name): Authorization's, else x-api-key's; None when it sent neither."""
    return next((token for token in client_tokens(client).values() if token), None)


class Logins:
    def __init__(self, limit: int = MAX_LOGINS) -> None:
        self.limit = limit
        self.seen: OrderedDict[tuple[str, str], Login] = OrderedDict()  # the least recently heard first

    def observe(self, provider: str, client: Mapping[str, str], seen: Quota) -> Login | None:
        """Keep what an answer to the client's login (`client`: its request headers by
        lowercase name) said of its quota, and return it; None when the client sent no
        token."""
        if (token := token_of(client)) is None:
            return None
        login = Login(provider, fingerprint(token), client_credential(client), seen)
        self.keep(login)
        return login

    def keep(self, login: Login) -> None:
        """Keep `login` as the most recently heard; past the limit the least recent goes."""
        key = (login.provider, login.fingerprint)
        self.seen.pop(key, None)
        self.seen[key] = login
        while len(self.seen) > self.limit:
            self.seen.popitem(last=False)

    def restore(self, logins: Iterable[Login]) -> None:
        """At start-up, the logins a state file kept, the least recently heard first (`dump`)."""
        for login in logins:
            self.keep(login)

    def dump(self) -> list[Login]:
        """The logins, the least recently heard first."""
        return list(self.seen.values())

    def describe(self, now: float) -> list[dict[str, Any]]:
        """As the snapshot shows them, the most recently heard first."""
        return [{"provider": login.provider, "login": login.fingerprint, "kind": login.kind,
                 "quota": login.quota.describe(now)} for login in reversed(self.seen.values())]
