"""Vault: no flow holds a real credential at any moment, in flight included.

mitmweb shows a flow from its `requestheaders` hook on: its View adds the flow then
and pushes it to the browser, and again after every later hook (AddonManager.
handle_lifecycle follows each with `update`); GET /flows reads the live objects; and
`-w` writes the flows still in flight at shutdown (Save.done). So a flow only ever
holds a credential's redacted form (a key as `label…last4`, the client's own token as
`client…last4`), and the Vault keeps the real value, by the request object, until
the flow ends:

- what the client sent as its credentials (Authorization, x-api-key, x-modelmux-key)
  is sealed in `requestheaders`, before mitmweb's View sees the flow: the View comes
  after every script addon (mitmproxy/tools/web/master.py);
- the Router seals the provider's key as it puts it on the flow (`seal`), and the
  secrets written into its headers: and query: (`seal`, `seal_path`);
- mitmproxy writes the real values only into the bytes or frames it sends upstream
  (internals.WireHeaders). Addons that need a real value read `real_headers`. The relay
  sends from its plan, so its loopback request keeps the redacted values.

If an upgrade moved that touchpoint, every request that needs a real value upstream
goes through the relay instead (`on_the_wire`), and one mitmproxy sent without the real
value anyway is answered with a clear error, not the upstream's 401.
"""

from __future__ import annotations

import copy
import logging
import weakref
from dataclasses import dataclass, field

from mitmproxy import http
from mitmproxy import version

from modelmux.addons.answers import answer_error
from modelmux.addons.internals import VERIFIED, WireHeaders
from modelmux.addons.notes import read_notes
from modelmux.config.types import Credential
from modelmux.errors import GatewayError
from modelmux.headers import CREDENTIAL_HEADERS
from modelmux.secrets import client_credentials as credentials_of
from modelmux.secrets import redacted_token

logger = logging.getLogger(__name__)

CLIENT_CREDENTIALS = frozenset(name.encode() for name in CREDENTIAL_HEADERS)


@dataclass
class _Seal:
    real: dict[tuple[bytes, bytes], bytes] = field(default_factory=dict)  # (lowercase name, shown) → real value
    path: tuple[bytes, bytes] | None = None  # (shown, real): a provider's query may hold a secret
    off_wire: bool = False  # sent by the relay from its plan: the loopback request keeps the shown values
    opened: bool = False  # mitmproxy wrote the real values upstream


_seals: weakref.WeakKeyDictionary[http.Request, _Seal] = weakref.WeakKeyDictionary()
# The client's tokens as credentials, by the header fields they were read from.
_tokens: weakref.WeakKeyDictionary[http.Request, tuple[tuple, list[Credential]]] = weakref.WeakKeyDictionary()
_wire = WireHeaders()
_on_the_wire = False


def seal(request: http.Request, name: str, real: str, shown: str) -> None:
    """Set header `name` to `shown` on the flow, and have mitmproxy send `real` upstream."""
    request.headers[name] = shown
    _seals.setdefault(request, _Seal()).real[(_bytes(name.lower()), _bytes(shown))] = _bytes(real)


def seal_path(request: http.Request, real: str, shown: str) -> None:
    """Set the request's path (with its query) to `shown` on the flow, and have mitmproxy
    send `real` upstream."""
    request.path = shown
    _seals.setdefault(request, _Seal()).path = (request.data.path, _bytes(real))


def _real_path(request: http.Request, seal: _Seal) -> bytes:
    return seal.path[1] if seal.path is not None and seal.path[0] == request.data.path else request.data.path


def real_fields(request: http.Request) -> list[tuple[bytes, bytes]]:
    """The request's header fields, each with its real value."""
    seal = _seals.get(request)
    if seal is None:
        return list(request.headers.fields)
    return [(name, seal.real.get((name.lower(), value), value)) for name, value in request.headers.fields]


def real_headers(request: http.Request) -> dict[str, str]:
    """The request's headers by lowercase name, with their real values. Reads the raw
    fields: Headers.items() looks each name up again, which costs half a millisecond on
    Claude Code's twenty headers."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in real_fields(request)}


def client_tokens(request: http.Request) -> dict[str, str]:
    """The headers a client may put a token in (CREDENTIAL_HEADERS) that the request holds
    now, with their real values, by lowercase name: all that headers.every_token and
    client_credential read. real_headers decodes every header for it, 11 µs a request
    for each addon that asked."""
    seal = _seals.get(request)
    real = seal.real if seal is not None else {}
    found = {}
    for name, value in request.headers.fields:
        if (lower := name.lower()) in CLIENT_CREDENTIALS:
            found[lower.decode("latin-1")] = real.get((lower, value), value).decode("latin-1")
    return found


def client_credentials(request: http.Request) -> list[Credential]:
    """secrets.client_credentials of the tokens the request holds now, worked out once for
    each state of its headers (mitmproxy replaces the fields tuple on every change): the
    Echoes, Failures and the Redactor all ask once the Router is done. Not to be changed."""
    fields = request.headers.fields
    cached = _tokens.get(request)
    if cached is not None and cached[0] is fields:
        return cached[1]
    found = credentials_of(client_tokens(request))
    _tokens[request] = (fields, found)
    return found


def pending(request: http.Request) -> bool:
    """Whether the request holds a sealed value that only mitmproxy's wire can open."""
    seal = _seals.get(request)
    return seal is not None and not seal.off_wire and (_real_path(request, seal) != request.data.path or any(
        (name.lower(), value) in seal.real for name, value in request.headers.fields
    ))


def _answered_here(flow: http.HTTPFlow) -> bool:
    """Whether no upstream was asked: modelmux answered, or mitmproxy's server replay did."""
    return bool(read_notes(flow).get("local")) or flow.is_replay == "response"


def keep_off_wire(request: http.Request) -> None:
    """The relay sends this request from its plan: its loopback copy keeps the shown values."""
    if (seal := _seals.get(request)) is not None:
        seal.off_wire = True


def on_the_wire() -> bool:
    """Whether mitmproxy can put sealed values on the wire (the touchpoint is in place)."""
    return _on_the_wire


def _opened(request: http.Request) -> http.Request | None:
    """A copy of `request` with its real values, for the wire alone; None if it has none."""
    seal = _seals.get(request)
    if seal is None or seal.off_wire:
        return None
    fields, path = real_fields(request), _real_path(request, seal)
    if fields == list(request.headers.fields) and path == request.data.path:
        return None
    seal.opened = True
    wire = copy.copy(request)
    wire.data = copy.copy(request.data)
    wire.data.headers = http.Headers(fields)
    wire.data.path = path
    return wire


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")  # as mitmproxy's Headers store a str


class Vault:
    def load(self, loader) -> None:
        global _on_the_wire
        _on_the_wire = _wire.install(_opened)

    def done(self) -> None:
        global _on_the_wire
        _wire.uninstall()
        _on_the_wire = False

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Seal the client's credentials before anything can show the flow."""
        request = flow.request
        fields, real = [], {}
        for name, value in request.headers.fields:
            if value and name.lower() in CLIENT_CREDENTIALS:
                shown = _bytes(redacted_token(value.decode("utf-8", "surrogateescape")))
                real[(name.lower(), shown)] = value
                value = shown
            fields.append((name, value))
        if real:
            _seals.setdefault(request, _Seal()).real.update(real)
            request.headers.fields = tuple(fields)

    def response(self, flow: http.HTTPFlow) -> None:
        seal = _seals.get(flow.request)
        if seal is not None and not seal.opened and pending(flow.request) and not _answered_here(flow):
            self._sent_sealed(flow)
        _seals.pop(flow.request, None)

    def error(self, flow: http.HTTPFlow) -> None:
        _seals.pop(flow.request, None)

    def _sent_sealed(self, flow: http.HTTPFlow) -> None:
        """mitmproxy sent the request without the touchpoint (a release that moved it in
        a way the check missed): the upstream got the redacted values, and its answer
        (a 401, most likely) would blame the credential."""
        assert flow.response
        message = (f"modelmux could not put this request's credential on the wire: mitmproxy {version.VERSION} "
                   f"sent it without modelmux's touchpoint, so the upstream got its redacted form (and answered "
                   f"HTTP {flow.response.status_code}); install mitmproxy {' or '.join(VERIFIED)}")
        logger.error(message)
        answer_error(flow, GatewayError(500, message))
