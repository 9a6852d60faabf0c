"""InboundAuth: the gateway keys clients must present (server.api_key, server.api_keys),
what each may use, and its requests-per-minute limit."""

from __future__ import annotations

import hmac
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from mitmproxy import http

from modelmux.addons import vault
from modelmux.addons.answers import answer_error, request_path
from modelmux.addons.notes import ensure_notes
from modelmux.addons.overview import PAGES
from modelmux.addons.settings import Settings
from modelmux.config.types import ClientKey
from modelmux.errors import GatewayError
from modelmux.headers import KEY_HEADER, client_tokens

# The launcher checks health without knowing the key; /healthz tells such a request
# only that a modelmux answers (LocalAPI.health). The overview page's files hold no data:
# the page asks for the key and sends it on its own requests (overview.py).
OPEN_PATHS = {"/healthz", *PAGES}
# The gateway's own API (pools, usage, resets, metrics): for server.api_key and keys
# with admin: true. Model requests and the model list are for every key.
OWN_API_PREFIX = "/modelmux/"
METRICS_PATH = "/metrics"
# What an rpm limit counts: the requests that ask a model for an answer.
LIMITED_PATH = "/v1/messages"
WINDOW = 60.0  # seconds: rpm is counted over the last minute, sliding


def presented(headers: Mapping[str, str], keys: Iterable[ClientKey]) -> ClientKey | None:
    """The key among `keys` a request carries where clients may send one: x-modelmux-key,
    x-api-key, or `Authorization: Bearer` (the scheme in any case). Every key is compared
    in constant time, found or not."""
    offered = [value.encode() for value in (headers.get(KEY_HEADER, "").strip(), *client_tokens(headers).values())
               if value]
    found = None
    for key in keys:
        expected = key.key.encode()
        if any([hmac.compare_digest(value, expected) for value in offered]) and found is None:
            found = key
    return found


class SharedRates(Protocol):
    """The fleet's count of each key's requests (the Fleet addon, with Redis)."""

    async def admit(self, label: str, rpm: int, now: float) -> float | None:
        """0 when admitted (and counted); otherwise the seconds until a request of key
        `label` may go. None: Redis did not answer, and this gateway counts alone."""
        ...


class Rates:
    """Each limited key's requests over the last minute, as this gateway saw them: a
    sliding log of their times (rpm is small, so at most rpm times per key)."""

    def __init__(self) -> None:
        self.seen: dict[str, deque[float]] = {}

    def wait(self, label: str, rpm: int, now: float) -> float:
        """0 when a request of key `label` may go now (it is counted); otherwise the
        seconds until one may."""
        times = self._last_minute(label, now)
        if len(times) >= rpm:
            return times[len(times) - rpm] + WINDOW - now
        times.append(now)
        return 0.0

    def count_at(self, label: str, now: float) -> int:
        """Requests of key `label` in the minute before `now`."""
        return len(self._last_minute(label, now))

    def count(self, label: str, now: float) -> None:
        """A request the fleet admitted: counted here too, for when Redis goes away."""
        self._last_minute(label, now).append(now)

    def _last_minute(self, label: str, now: float) -> deque[float]:
        """Key `label`'s request times, those older than a minute before `now` dropped."""
        times = self.seen.setdefault(label, deque())
        while times and times[0] <= now - WINDOW:
            times.popleft()
        return times


class InboundAuth:
    """With any gateway key set, a request must carry one in x-modelmux-key, x-api-key or
    `Authorization: Bearer`. Every header that carries it is removed, so a gateway key
    never reaches an upstream (passthrough keeps the client's other headers). The key's
    label goes into the flow's notes: its profiles and providers are enforced where the
    request is routed (Settings.profile_of, the Router), its rate here."""

    def __init__(self, settings: Settings, fleet: SharedRates | None = None) -> None:
        self.settings = settings
        self.fleet = fleet  # set by the Fleet addon while the state is shared
        self.rates = Rates()

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        assert self.settings.config
        keys = self.settings.config.server.client_keys
        path = request_path(flow)
        if not keys or path in OPEN_PATHS:
            return
        key = presented(vault.client_tokens(flow.request), keys)  # the flow holds them sealed
        if key is None:
            which = "one of its API keys (server.api_keys)" if self.settings.config.server.api_keys else \
                "its API key (server.api_key)"
            return answer_error(flow, GatewayError(
                401, f"this modelmux gateway requires {which}: send it in x-modelmux-key, x-api-key or Authorization: Bearer",
            ))
        # A client may send it twice (x-modelmux-key beside a copy in x-api-key): any
        # header holding it would take it to a passthrough upstream.
        secret = key.key.encode()
        holding = {name for name, value in vault.real_fields(flow.request) if secret in value}
        for name in {name.decode("latin-1").lower() for name in holding}:
            del flow.request.headers[name]
        ensure_notes(flow)["client_key"] = key.label
        if (path.startswith(OWN_API_PREFIX) or path == METRICS_PATH) and not key.admin:
            return answer_error(flow, GatewayError(
                403,
                f"the key '{key.label}' may send model requests only; {path} needs server.api_key or a key "
                "with admin: true under server.api_keys",
            ))
        if key.rpm is not None and path == LIMITED_PATH and flow.request.method == "POST":
            if (wait := await self.wait(key.label, key.rpm, time.time())) > 0:
                seconds = max(1, math.ceil(wait))
                answer_error(flow, GatewayError(
                    429,
                    f"the key '{key.label}' may send {key.rpm} requests per minute (server.api_keys.{key.label}.rpm); "
                    f"try again in {seconds} s",
                    headers={"retry-after": str(seconds)},
                ))

    def describe(self, now: float) -> list[dict[str, Any]]:
        """The client keys as `modelmux status` shows them: what each may use, and for a
        key with an rpm, its requests in the last minute as this gateway counted them."""
        assert self.settings.config
        return [{
            "label": key.label,
            "admin": key.admin,
            "profiles": list(key.profiles) if key.profiles is not None else None,
            "providers": sorted(key.providers) if key.providers is not None else None,
            "rpm": key.rpm,
            "last_minute": self.rates.count_at(key.label, now) if key.rpm is not None else None,
        } for key in self.settings.config.server.client_keys]

    async def wait(self, label: str, rpm: int, now: float) -> float:
        """0 when the request may go; else the seconds until one of this key may. With
        the fleet's count when Redis answers, else this gateway's own."""
        if self.fleet is not None:
            shared = await self.fleet.admit(label, rpm, now)
            if shared is not None:
                if shared == 0:
                    self.rates.count(label, now)
                return shared
        return self.rates.wait(label, rpm, now)
