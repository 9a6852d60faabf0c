"""A recorded flow as a replay reads it: what the client sent, what it received, what
went upstream, and the upstream's answers to play back (contract.md's capture fields,
written by the Recorder)."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy import io

from modelmux.addons.notes import Notes, ensure_notes, read_notes
from modelmux.replay.compare import REPLAY_HEADER, Answer, Sent, Side

# Version of what metadata["modelmux"]["record"] and the captured fields hold; a replay
# refuses records it does not understand instead of misreading them.
RECORD_VERSION = 1
# The replay server's reverse target. Nothing listens there: a request the recording
# has no answer for is answered 404 by the server, or refused once all are used up.
REPLAY_TARGET = urlsplit("http://127.0.0.1:9")
UPSTREAM_KINDS = ("routed", "forwarded")  # the Dashboard's kinds of flow that went upstream


def read(path: Path) -> list[http.HTTPFlow]:
    """The HTTP flows of a flow file. Raises ValueError naming the file."""
    try:
        with path.open("rb") as file:
            return [f for f in io.FlowReader(file).stream() if isinstance(f, http.HTTPFlow)]
    except (OSError, exceptions.FlowReadException) as e:
        raise ValueError(f"cannot read {path}: {e}") from e


def write(path: Path, flows: Iterable[http.HTTPFlow]) -> None:
    """Write a flow file whole; a crash half-way leaves the old one."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as file:
        writer = io.FlowWriter(file)
        for flow in flows:
            writer.add(flow)
    os.replace(partial, path)


class Recording:
    """One recorded flow."""

    def __init__(self, flow: http.HTTPFlow, name: str) -> None:
        self.flow = flow
        self.name = name
        self.notes: Notes = read_notes(flow)
        self.summary: dict[str, Any] = self.notes.get("summary") or {}
        self.record: dict[str, Any] = self.notes.get("record") or {}

    @property
    def routes(self) -> str:
        """The routes.yaml text the gateway ran with (scrubbed)."""
        return self.record.get("routes") or ""

    def problem(self) -> str | None:
        """Why this flow cannot be replayed, or None."""
        if not self.record:
            return "not recorded by `modelmux serve --record` (it has no modelmux record metadata)"
        if self.record.get("version") != RECORD_VERSION:
            return f"recorded in format {self.record.get('version')}; this modelmux replays format {RECORD_VERSION}"
        if self.flow.response is None or self.flow.response.raw_content is None:
            error = self.flow.error.msg if self.flow.error else "no response was recorded"
            return f"the client got no complete answer ({error}), so there is nothing to compare"
        for number, attempt in enumerate(attempts_of(self.flow), 1):
            if not isinstance(attempt.get("status"), int):
                return (f"upstream attempt {number} got no HTTP answer ({attempt.get('outcome')}); "
                        "server replay can only play back answers")
        return None

    def client_request(self) -> tuple[str, str, list[tuple[str, str]], bytes]:
        """(method, path with query, headers, body) as the client sent them, auth redacted."""
        captured = self.notes.get("client_request") or {}
        request = self.flow.request
        headers = captured.get("headers") or request.headers.fields
        body = captured.get("body")
        return (
            captured.get("method") or request.method,
            captured.get("path") or request.path,
            [(as_text(n), as_text(v)) for n, v in headers],
            (request.content or b"") if body is None else body,
        )

    def expected(self) -> Side:
        response = self.flow.response
        assert response is not None
        answer = answer_of(response)
        if self.client_request()[0] == "HEAD":  # whatever the record holds, a client reads no body
            answer = dataclasses.replace(answer, body=b"")
        return Side(answer, sent_of(self.flow))

    def upstream_flows(self) -> list[http.HTTPFlow]:
        """The flows server replay answers the gateway's upstream requests from, one per
        attempt in order (same-bodied attempts are answered in the order recorded)."""
        flows = []
        attempts = attempts_of(self.flow)
        for attempt in attempts[:-1]:
            sent = _earlier(attempt, self.flow)
            answer = _response(attempt["status"], attempt.get("response_headers"), attempt.get("response_body"))
            flows.append(self._flow(http.Request.make(sent.method, _replay_url(sent.path), sent.body), answer))
        if attempts:
            raw = self.notes.get("upstream_response")
            assert self.flow.response is not None
            answer = _response(raw["status"], raw.get("headers"), raw.get("body")) if raw else self.flow.response.copy()
            final = self.flow.request.copy()
            final.url = _replay_url(final.path)
            flows.append(self._flow(final, answer))
        return flows

    def updated(self, now: http.HTTPFlow) -> http.HTTPFlow:
        """This recording with its expectations (what the client got, what went upstream,
        the summary) taken from `now`, a record of the same request replayed; the inputs
        (client request, upstream answers, routes) stay as recorded, and so do the
        upstreams' origins, which the replay pointed at its server."""
        flow = self.flow.copy()
        flow.response = now.response.copy() if now.response else None
        if attempts_of(now):  # else the request is the client's as recorded, an input
            flow.request = now.request.copy()
            flow.request.url = _origin(self.flow.request.url) + flow.request.path
            flow.request.headers.pop(REPLAY_HEADER, None)
        origins = {a.get("provider"): _origin(a["upstream"]) for a in attempts_of(self.flow)}
        fresh = read_notes(now)
        notes = ensure_notes(flow)
        notes["attempts"] = [_moved(a, origins.get(a.get("provider"))) for a in fresh.get("attempts") or []]
        notes["summary"] = fresh.get("summary") or self.summary
        flow.comment, flow.marked = now.comment, now.marked
        return flow

    def _flow(self, request: http.Request, response: http.Response) -> http.HTTPFlow:
        flow = self.flow.copy()
        flow.id = str(uuid.uuid4())
        flow.request, flow.response, flow.error = request, response, None
        flow.metadata = {}
        return flow


def attempts_of(flow: http.HTTPFlow) -> list[dict[str, Any]]:
    """The attempts of a routed flow that were sent to an upstream, in order; the last
    one's request is flow.request. (An attempt without a URL was refused before sending.)"""
    notes = read_notes(flow)
    if (notes.get("summary") or {}).get("kind") not in UPSTREAM_KINDS:
        return []
    sent = [a for a in notes.get("attempts") or [] if a.get("upstream")]
    return sent or [{"status": flow.response.status_code if flow.response else None, "upstream": flow.request.url}]


def sent_of(flow: http.HTTPFlow) -> list[Sent]:
    """What a flow sent upstream, attempt by attempt."""
    attempts = attempts_of(flow)
    if not attempts:
        return []
    request = flow.request
    final = Sent(request.method, request.path, request.content or b"",
                 [(as_text(n), as_text(v)) for n, v in request.headers.fields])
    return [_earlier(a, flow) for a in attempts[:-1]] + [final]


def _earlier(attempt: dict[str, Any], flow: http.HTTPFlow) -> Sent:
    """An earlier (failed) attempt's request, from what the capture keeps of it."""
    final = flow.request
    path = urlsplit(attempt["upstream"]).path
    # The capture keeps an attempt's URL without its query (it may hold a key); the
    # query is the provider's own, the same as the final attempt's on the same path.
    if path == final.path.partition("?")[0]:
        path = final.path
    body = attempt.get("request_body")
    return Sent("POST", path, (final.content or b"") if body is None else body)


def answer_of(response: http.Response) -> Answer:
    try:
        body = response.get_content() or b""
    except ValueError:
        body = response.raw_content or b""
    return Answer(response.status_code, [(as_text(n), as_text(v)) for n, v in response.headers.fields], body)


def _response(status: int, headers: Iterable[Any] | None, body: bytes | None) -> http.Response:
    return http.Response.make(status, body or b"", http.Headers([(_bytes(n), _bytes(v)) for n, v in headers or ()]))


def _moved(attempt: dict[str, Any], origin: str | None) -> dict[str, Any]:
    if not origin or not attempt.get("upstream"):
        return attempt
    return {**attempt, "upstream": origin + urlsplit(attempt["upstream"]).path}


def _replay_url(path: str) -> str:
    return f"{REPLAY_TARGET.scheme}://{REPLAY_TARGET.netloc}{path}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def as_text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
