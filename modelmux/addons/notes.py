"""What modelmux notes on a flow, typed, and read and written only through here.

The notes live in `flow.metadata["modelmux"]`, as proxyauth keeps its one key in
`f.metadata["proxyauth"]`. They stay plain JSON values (TypedDicts, not objects):
mitmproxy saves a flow's metadata with it (`-w`, the Recorder's file, mitmweb's
export), in a format that takes only plain values, and a replay reads them back.

Who writes what: the Router (where the request went), Direct and the relay's Failover
(its attempts), Failures (how mitmproxy's attempt failed), the Dashboard (its
summary and the bodies it keeps), the Usage and Metrics addons (that they counted the
flow), the Recorder (the record's version); local answers mark themselves `local`.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from mitmproxy import http

KEY = "modelmux"


class Attempt(TypedDict, total=False):
    """One attempt at an upstream, as the dashboard and the record show it."""

    provider: str
    credential: str  # its label (secrets.label_of), never the secret
    model: str  # as sent, with its effort (`NAME(EFFORT)`)
    protocol: str
    upstream: str  # the URL, without its query
    status: int | None  # the upstream's HTTP status, if it answered
    outcome: int | str  # the status, or how it failed ("timeout", "reset", "not sent: ...")
    start: float  # when it was sent, epoch seconds (the relay's; mitmproxy's one attempt starts with the flow)
    ms: float
    refreshed: bool  # an oauth token was refreshed and the request sent again
    error: str
    # Kept only while flows are (mitmweb, -w, a recording), without secrets:
    sent: dict[str, Any]  # url, headers, body
    answer: dict[str, Any]  # status, headers, body
    response_headers: list[list[str]]
    response_body: bytes


class Notes(TypedDict, total=False):
    # Where the Router sent the request.
    requested_model: str
    model: str  # the upstream model, with its effort
    provider: str
    route: str  # the rule, e.g. "routes[2] if thinking"
    profile: str | None
    protocol: str
    connect_timeout: float
    response_timeout: float
    credential: str  # label of the credential mitmproxy sent it with
    login: str  # the fingerprint of the client's own login on passthrough, when its answer named a quota
    restore_model: str | None  # the model name the answer is given back under
    translation: dict[str, Any]  # the translator's notes (exchange.Outgoing.translation)
    relay: bool  # sent through the failover relay
    fallback: list[str]  # "provider/model" of the route's fallbacks
    client_key: str  # the label of the gateway key the client presented: /metrics' client_key ("" without one)
    # What became of it.
    attempts: list[Attempt]
    rounds: int  # 2 when the relay tried a second round
    relay_ms: float
    cancelled: bool  # the client went away while the relay tried
    error: str  # the client's error, in one line
    failure: Literal["timeout", "connect", "reset", "cancelled"]  # how mitmproxy's attempt failed (Failures)
    status: int  # the status of mitmproxy's error page for it (Failures)
    local: bool  # answered by modelmux: no upstream was asked
    intercepted: bool  # a request a route answers locally (warmup)
    # The Dashboard's.
    summary: dict[str, Any]
    client_request: dict[str, Any]  # the request as the client sent it, its token redacted
    upstream_answer: dict[str, Any]  # the upstream's answer before modelmux rewrote it
    upstream_response: dict[str, Any]
    # Others'.
    usage_counted: bool  # the Usage addon counted it (a flow may end in response and error)
    metrics_counted: bool  # the Metrics addon counted it
    traced: bool  # the Traces addon made its spans
    record: dict[str, Any]  # the Recorder's version stamp


def start_notes(flow: http.HTTPFlow, notes: Notes) -> Notes:
    """The flow's notes, from now on `notes` (the Router's, as it routes it), keeping
    the label of the client's key (InboundAuth's, noted before)."""
    earlier = flow.metadata.get(KEY)
    if earlier and "client_key" in earlier:
        notes["client_key"] = earlier["client_key"]
    flow.metadata[KEY] = notes
    return notes


def notes_of(flow: http.HTTPFlow) -> Notes:
    """The notes of a flow modelmux has noted (KeyError otherwise: a bug)."""
    return flow.metadata[KEY]


def find_notes(flow: http.HTTPFlow) -> Notes | None:
    """The flow's notes, None when modelmux has noted nothing (mitmproxy refused it first)."""
    return flow.metadata.get(KEY)


def read_notes(flow: http.HTTPFlow) -> Notes:
    """The flow's notes to read, empty when there are none (writing to those is lost)."""
    return flow.metadata.get(KEY) or Notes()


def ensure_notes(flow: http.HTTPFlow) -> Notes:
    """The flow's notes, made if there are none yet (a local answer's)."""
    return flow.metadata.setdefault(KEY, Notes())


def routed_notes(flow: http.HTTPFlow) -> Notes | None:
    """The notes of a flow modelmux sent upstream; None when it was not sent anywhere."""
    notes = flow.metadata.get(KEY)
    return notes if notes and "provider" in notes and not notes.get("local") else None
