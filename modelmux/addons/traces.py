"""Traces: one OpenTelemetry span per request the gateway routed, with one child span per
upstream attempt, exported over OTLP/HTTP when routes.yaml's `telemetry.otlp_endpoint` is
set (off by default; docs/metrics.md). Attributes follow OpenTelemetry's GenAI semantic
conventions (gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model,
gen_ai.response.model, gen_ai.usage.*, gen_ai.response.finish_reasons).

Spans are made once the answer has ended, from the Dashboard's summary and the flow's
attempts (both send paths note them alike), with their real start and end times; the
SDK's batch processor exports them from its own thread, so no flow waits for the
collector. No span carries a secret: credentials appear by label, upstreams by host,
never a header. Message content only with `telemetry.content: true`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import http

from modelmux.addons.metrics import attempts_of, first_look
from modelmux.addons.settings import Settings
from modelmux.addons.streams import Pipe, Watcher
from modelmux.config.types import Config, Telemetry
from modelmux.translate.assembly import Assembly

logger = logging.getLogger(__name__)

TRACED = "traced"  # a notes flag: a flow may end in response and error both
OPERATION = "chat"  # GenAI semconv's operation name for a Messages (chat) request
EXPORT_TIMEOUT = 10  # seconds an export may take before the batch is dropped (never on the event loop)
EXIT_WAIT = 2.0  # seconds the gateway waits at exit for its last spans to be sent


class Traces:
    def __init__(self, settings: Settings) -> None:
        self.telemetry: Telemetry | None = None
        self._provider: Any = None  # opentelemetry.sdk.trace.TracerProvider, imported only when configured
        self._tracer: Any = None
        self._inputs: dict[str, bytes] = {}  # flow id → the client's request body (content only)
        self._outputs: dict[str, list[bytes]] = {}  # flow id → the stream the client got (content only)
        self.inputs = _Inputs(self)  # the chain puts it before the Router, which rewrites the request
        settings.subscribe(self._configure)

    def _configure(self, config: Config) -> None:
        telemetry = config.telemetry
        if telemetry == self.telemetry:
            return
        self._stop()
        self.telemetry = telemetry
        if telemetry.otlp_endpoint is not None:
            self._provider, self._tracer = _exporting(telemetry)
            where = urlsplit(telemetry.otlp_endpoint)
            logger.info("traces are exported to %s://%s%s", where.scheme, where.hostname,
                        f":{where.port}" if where.port else "")  # not the URL's userinfo or query

    def _stop(self) -> None:
        """The exporter in use sends what it holds and stops, in a thread: a collector that
        does not answer must not hold up a reload."""
        if self._provider is not None:
            threading.Thread(target=self._provider.shutdown, name="modelmux traces shutdown", daemon=True).start()
        self._provider = self._tracer = None

    def done(self) -> None:
        """At exit the last spans are sent, waiting at most EXIT_WAIT for a collector that
        does not answer: `modelmux stop` must not hang on it."""
        if self._provider is not None:
            sender = threading.Thread(target=self._provider.shutdown, name="modelmux traces shutdown", daemon=True)
            sender.start()
            sender.join(EXIT_WAIT)
            self._provider = self._tracer = None

    @property
    def content(self) -> bool:
        return self._tracer is not None and self.telemetry is not None and self.telemetry.content

    # -- hooks ------------------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """With content on, keeps the stream the client gets: after the Dashboard, which
        made the flow's stream a Pipe and watches what passes."""
        response = flow.response
        if not self.content or response is None or not isinstance(pipe := response.stream, Pipe):
            return
        pipe.watcher = _Keeping(pipe.watcher, self._outputs.setdefault(flow.id, []))

    def response(self, flow: http.HTTPFlow) -> None:
        self._trace(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._trace(flow)

    def _trace(self, flow: http.HTTPFlow) -> None:
        body = self._inputs.pop(flow.id, None)
        output = self._outputs.pop(flow.id, None)
        tracer = self._tracer
        if tracer is None or (found := first_look(flow, TRACED)) is None:
            return
        try:
            self._spans(tracer, flow, *found, body, output)
        except Exception:
            # A span is an observer's: it never fails the flow, nor skips the addons after
            # this one (the Recorder), as an exception raised from a hook would.
            logger.exception("cannot make the trace of %s", flow.request.path.partition("?")[0])

    def _spans(self, tracer: Any, flow: http.HTTPFlow, notes: dict[str, Any], summary: dict[str, Any],
               body: bytes | None, output: list[bytes] | None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start = _ns(summary["time"])
        attributes = _request_attributes(summary, notes)
        if self.content:
            attributes.update(_content(body, output, flow))
        span = tracer.start_span(f"{OPERATION} {summary['requested_model'] or ''}".strip(), kind=SpanKind.SERVER,
                                 start_time=start, attributes=attributes)
        if summary["error_type"]:
            span.set_status(Status(StatusCode.ERROR, notes.get("error") or summary["error_type"]))
        parent = trace.set_span_in_context(span)
        for attempt in attempts_of(notes, summary):
            began = attempt.get("start", summary["time"])  # mitmproxy's one attempt starts with the flow
            ms = attempt.get("ms") or 0.0
            child = tracer.start_span(f"{OPERATION} {attempt.get('model') or summary['model']}", context=parent,
                                      kind=SpanKind.CLIENT, start_time=_ns(began),
                                      attributes=_attempt_attributes(attempt, notes))
            outcome = attempt.get("outcome")
            if not (isinstance(outcome, int) and outcome < 400):
                child.set_status(Status(StatusCode.ERROR, str(outcome)))
            child.end(end_time=_ns(began + ms / 1000))
        span.end(end_time=start + int(summary["total_ms"] * 1e6))


class _Inputs:
    """The Traces' request hook, before the Router: the client's body as it sent it, kept
    (a reference, not a copy) only while spans carry content."""

    def __init__(self, traces: Traces) -> None:
        self.traces = traces

    def request(self, flow: http.HTTPFlow) -> None:
        if self.traces.content and not flow.response and flow.request.content:
            self.traces._inputs[flow.id] = flow.request.content


def _exporting(telemetry: Telemetry) -> tuple[Any, Any]:
    """A tracer provider that batches spans to the collector, and its tracer. Imported here:
    the SDK is the `otel` extra, and the loader refuses a telemetry section without it."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from modelmux import __version__

    provider = TracerProvider(resource=Resource.create({"service.name": telemetry.service_name,
                                                        "service.version": __version__}))
    exporter = OTLPSpanExporter(endpoint=telemetry.otlp_endpoint, headers=dict(telemetry.otlp_headers),
                                timeout=EXPORT_TIMEOUT)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, provider.get_tracer("modelmux", __version__)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _request_attributes(summary: dict[str, Any], notes: dict[str, Any]) -> dict[str, Any]:
    """The request span's: what the client asked, what answered, what it cost."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.request.model": summary["requested_model"] or "",
        "http.response.status_code": summary["status"],
        "modelmux.stream": summary["stream"],
        "modelmux.attempts": summary["attempts"],
    }
    if summary["provider"]:
        # The provider in routes.yaml's words (gen_ai.system: the same, as older semconv names it).
        attributes["gen_ai.provider.name"] = attributes["gen_ai.system"] = summary["provider"]
        attributes["modelmux.provider"] = summary["provider"]
    if summary["model"]:
        attributes["gen_ai.response.model"] = summary["model"]
    if summary["credential"]:
        attributes["modelmux.credential"] = summary["credential"]  # its label, never the key
    for name in ("route", "profile"):
        if summary.get(name):
            attributes[f"modelmux.{name}"] = summary[name]
    if notes.get("protocol"):
        attributes["modelmux.protocol"] = notes["protocol"]
    if notes.get("client_key"):
        attributes["modelmux.client_key"] = notes["client_key"]
    if summary["kind"] == "routed":
        # GenAI semconv: input tokens include the cached ones; those read and written apart.
        attributes["gen_ai.usage.input_tokens"] = (summary["input_tokens"] + summary["cached_tokens"]
                                                   + summary["cache_write_tokens"])
        attributes["gen_ai.usage.output_tokens"] = summary["output_tokens"]
        attributes["gen_ai.usage.cache_read.input_tokens"] = summary["cached_tokens"]
        attributes["gen_ai.usage.cache_creation.input_tokens"] = summary["cache_write_tokens"]
    if summary.get("stop_reason"):
        attributes["gen_ai.response.finish_reasons"] = [summary["stop_reason"]]
    if summary["ttft_ms"] is not None:
        attributes["modelmux.time_to_first_token_ms"] = summary["ttft_ms"]
    if summary["error_type"]:
        attributes["error.type"] = summary["error_type"]
    return attributes


def _attempt_attributes(attempt: dict[str, Any], notes: dict[str, Any]) -> dict[str, Any]:
    """An attempt span's: which upstream, with which credential, and what became of it."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": attempt["provider"],
        "gen_ai.system": attempt["provider"],
        "gen_ai.request.model": attempt.get("model") or notes.get("model") or "",
        "modelmux.provider": attempt["provider"],
        "modelmux.credential": attempt.get("credential") or "",
        "modelmux.protocol": attempt.get("protocol") or notes.get("protocol") or "",
        "modelmux.outcome": str(attempt.get("outcome", "")),
    }
    if isinstance(attempt.get("status"), int):
        attributes["http.response.status_code"] = attempt["status"]
    outcome = attempt.get("outcome")
    if not (isinstance(outcome, int) and outcome < 400):
        attributes["error.type"] = str(outcome).partition(":")[0]  # "429", "timeout", "not sent"
    if upstream := attempt.get("upstream"):
        where = urlsplit(upstream)  # the host only: a provider may keep a secret in its path
        if where.hostname:
            attributes["server.address"] = where.hostname
        if where.port:
            attributes["server.port"] = where.port
    return attributes


class _Keeping:
    """A Pipe's watcher that also keeps what passes to the client (content only)."""

    def __init__(self, inner: Watcher | None, kept: list[bytes]) -> None:
        self.inner = inner
        self.kept = kept

    @property
    def first_content(self) -> float | None:
        return self.inner.first_content if self.inner is not None else None

    def passed(self, pieces: list[bytes]) -> None:
        if self.inner is not None:
            self.inner.passed(pieces)
        self.kept += pieces


# -- content (telemetry.content: true) --------------------------------------------------

def _content(body: bytes | None, output: list[bytes] | None, flow: http.HTTPFlow) -> dict[str, str]:
    """gen_ai.system_instructions, gen_ai.input.messages and gen_ai.output.messages, as
    JSON in the GenAI semconv's shape, from the client's request and the answer it got."""
    attributes: dict[str, str] = {}
    try:
        request = json.loads(body) if body else {}
    except (ValueError, RecursionError):  # RecursionError: JSON nested some 10,000 deep
        request = {}
    if isinstance(request, dict):
        system = request.get("system")
        if system:
            blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
            attributes["gen_ai.system_instructions"] = _json([_part(b) for b in blocks if isinstance(b, dict)])
        messages = request.get("messages")
        if isinstance(messages, list):
            attributes["gen_ai.input.messages"] = _json([_message(m) for m in messages if isinstance(m, dict)])
    answer = _answer(output, flow)
    if answer is not None:
        attributes["gen_ai.output.messages"] = _json([{**_message(answer),
                                                       "finish_reason": answer.get("stop_reason") or ""}])
    return attributes


def _answer(output: list[bytes] | None, flow: http.HTTPFlow) -> dict[str, Any] | None:
    """The message the client got: a stream put together, or the whole JSON answer."""
    if output is not None:
        assembly = Assembly()
        try:
            assembly.feed(b"".join(output))
        except (ValueError, KeyError, TypeError):
            return None
        return assembly.message
    response = flow.response
    if response is None or response.status_code >= 400:
        return None
    try:
        message = json.loads(response.content or b"")
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) and message.get("type") == "message" else None


def _message(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    return {"role": message.get("role", ""), "parts": [_part(b) for b in blocks if isinstance(b, dict)]}


_PARTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "text": lambda b: {"type": "text", "content": b.get("text", "")},
    "thinking": lambda b: {"type": "reasoning", "content": b.get("thinking", "")},
    "tool_use": lambda b: {"type": "tool_call", "id": b.get("id"), "name": b.get("name"), "arguments": b.get("input")},
    "tool_result": lambda b: {"type": "tool_call_response", "id": b.get("tool_use_id"), "response": b.get("content")},
}


def _part(block: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic content block as a GenAI part; images and documents by their type
    only (their bytes are no trace's business)."""
    make = _PARTS.get(block.get("type", ""))
    return make(block) if make else {"type": block.get("type", "")}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
