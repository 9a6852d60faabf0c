"""Dashboard: every flow says what happened, in one line in mitmweb's comment column
and as a summary in its metadata (which the usage statistics read): the model asked
for and the upstream that answered, the credential's label, the status, the tokens,
the time to the first token and in all, and the failover path.

While flows are kept (mitmweb, `-w`, a recording) it also keeps what the "modelmux"
content view shows: the stream the client received (mitmproxy keeps no streamed
body), the upstream's answer where it differed, the client's body where the
upstream got another, and for a relayed flow the request the winning attempt sent.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import Any

from mitmproxy import contentviews
from mitmproxy import ctx
from mitmproxy import http

from modelmux.addons import vault
from modelmux.addons.answers import as_kept, request_path
from modelmux.addons.contentview import ModelmuxContentview
from modelmux.addons.failures import sent_page
from modelmux.addons.internals import CLIENT_GONE, can_write_chunks, flows_kept, write_chunk
from modelmux.addons.notes import find_notes
from modelmux.addons.streams import Pipe
from modelmux.credentials import quota
from modelmux.errors import ERROR_TYPES
from modelmux.secrets import longest_first, scrub
from modelmux.translate.meter import Meter, Reported, Tokens, stop_reason_of_json, tokens_of_json
from modelmux.translate.translated_stream import TranslatedStream

ERROR_SCAN_LIMIT = 64 * 1024  # an error body longer than this is not read for its type

logger = logging.getLogger(__name__)


class Dashboard:
    def __init__(self) -> None:
        self._meters: dict[str, Meter | Reported] = {}
        self._raw: dict[str, list[bytes]] = {}  # flow id → the upstream's chunks
        self._counted: dict[str, Tokens | None] = {}  # flow id → its whole answer's tokens, read once
        self._lines = False  # modelmux_summary_lines

    def load(self, loader) -> None:
        contentviews.add(ModelmuxContentview())
        loader.add_option(
            "modelmux_summary_lines",
            bool,
            False,
            "Log each finished request's line (mitmweb's comment column) at info level. "
            "`modelmux serve` sets it, with flow_detail=0: a line per request that says what "
            "modelmux did, written once the client has its answer, instead of mitmdump's own "
            "(the URL the flow was last sent to, which for most is modelmux's relay).",
        )

    def configure(self, updated: set[str]) -> None:
        if "modelmux_summary_lines" in updated:
            self._lines = ctx.options.modelmux_summary_lines

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Runs after every addon that sets or wraps a stream: it sees what the client gets."""
        notes = find_notes(flow)
        response = flow.response
        if not notes or "provider" not in notes or notes.get("local") or response is None or not response.stream:
            return
        keep = flows_kept()
        response.stream = pipe = Pipe.of(response.stream)
        transform = pipe.transform
        if isinstance(transform, TranslatedStream):  # it reports what it wrote: nothing to scan
            meter: Meter | Reported = Reported(transform.writer, keep=keep)
        else:
            meter = Meter(keep=keep)
        self._meters[flow.id] = pipe.watcher = meter
        if can_write_chunks(flow):  # what a read's chunks give, once the first token is out, in one write
            pipe.write = partial(write_chunk, flow)
        if keep and pipe.changes:  # the upstream's bytes are worth keeping too
            pipe.raw = self._raw[flow.id] = []

    def meter_of(self, flow: http.HTTPFlow) -> Meter | Reported | None:
        """The meter of a streamed flow, complete once its `response` hook runs."""
        return self._meters.get(flow.id)

    def tokens_of(self, flow: http.HTTPFlow) -> Tokens | None:
        """The tokens of a flow's whole answer as it is now, read once for its credential's
        pool (Direct) and the flow's summary: each read parses the answer."""
        if flow.id not in self._counted:
            self._counted[flow.id] = tokens_of_json(flow.response.content or b"") if flow.response else None
        return self._counted[flow.id]

    def response(self, flow: http.HTTPFlow) -> None:
        """While flows are kept, the summary is made in the hook: mitmweb's update after it,
        `-w` and the Recorder read the flow as it is then. Otherwise nobody reads it before
        the bookkeeping after the answer, which is when `answered` makes it."""
        if flows_kept():
            self._finish(flow)

    def answered(self, flow: http.HTTPFlow) -> None:
        """Called by the Chain once the answer is written, before the readers of the
        summary (Usage, Metrics, Overview, Traces); nothing left to do if `response` made it."""
        self._finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def _finish(self, flow: http.HTTPFlow) -> None:
        meter = self._meters.pop(flow.id, None)
        raw = self._raw.pop(flow.id, None)
        counted = self._counted.pop(flow.id, None)
        notes = find_notes(flow)
        if notes is None or "summary" in notes:
            return
        _finished(flow, notes)
        if flows_kept():
            _keep(flow, notes, meter, raw)
        summary = notes["summary"] = summarize(flow, notes, meter, counted)
        _show(flow, notes, summary)
        if self._lines:  # an error it quotes may quote a token an upstream echoed: the client's
            # here, the configured secrets in every log line (LogSecrets)
            logger.info("%s", scrub(flow.comment, longest_first(vault.client_credentials(flow.request))))


def summarize(flow: http.HTTPFlow, notes: dict[str, Any], meter: Meter | Reported | None,
              counted: Tokens | None = None) -> dict[str, Any]:
    """The flow's summary (plain JSON, kept in its metadata): see dashboard's module doc.
    `counted`: the whole answer's tokens, when they were read already (tokens_of)."""
    request, response = flow.request, flow.response
    started = request.timestamp_start
    ended = (response.timestamp_end if response else None) or time.time()
    kind = _kind(notes)
    status = response.status_code if response else notes.get("status", 0)
    tokens = meter.tokens() if meter else None
    estimated = meter is not None and _estimated(meter, notes)
    if tokens is None and response is not None and status < 400 and kind == "routed":
        tokens = counted or tokens_of_json(response.content or b"")
    error_type = _error_type(flow, status, meter)
    if meter is not None:
        ttft = round((meter.first_content - started) * 1000, 1) if meter.first_content else None
        stop_reason = meter.stop_reason
    else:
        ttft = round((ended - started) * 1000, 1) if response is not None and status < 400 and kind == "routed" else None
        stop_reason = stop_reason_of_json(response.content or b"") if tokens is not None and response else None
    attempts = notes.get("attempts")
    if attempts is None:
        attempts = [{"provider": notes["provider"], "credential": notes.get("credential"), "outcome": status}] \
            if kind == "routed" else []
    return {
        "kind": kind,
        "time": started,
        "method": request.method,
        "path": (notes.get("client_request") or {}).get("path") or request_path(flow),
        "requested_model": notes.get("requested_model"),
        "provider": notes.get("provider"),
        "model": notes.get("model"),
        "credential": notes.get("credential"),
        "route": notes.get("route"),
        "profile": notes.get("profile"),
        "client_key": notes.get("client_key"),  # the label of the gateway key it came with
        "status": status,
        "error_type": error_type,
        "stop_reason": stop_reason,
        "stream": meter is not None,
        **(tokens or Tokens()).as_dict(),
        "tokens_estimated": estimated,  # the stream ended before the upstream's count: modelmux's estimate
        "ttft_ms": ttft,
        "total_ms": round((ended - started) * 1000, 1),
        "attempts": len(attempts),
        "failover": [f"{a['provider']}/{a['credential']} {a.get('outcome', '…')}" for a in attempts],
        "quota": _quota(response, notes),
        "login": notes.get("login"),  # whose quota it is on passthrough (client_logins.py)
    }


def _quota(response: http.Response | None, notes: dict[str, Any]) -> dict[str, Any] | None:
    """What the answer's rate-limit headers said of the subscription behind it, credential
    or the client's own login (quota.py); read only from protocols whose upstreams say it."""
    if response is None or notes.get("protocol") not in quota.PROTOCOLS:
        return None
    seen = quota.read(response.headers.fields, time.time())
    return seen.brief() if seen is not None else None


def _estimated(meter: Meter | Reported, notes: dict[str, Any]) -> bool:
    """Whether a stream's input count is modelmux's own estimate: a translated stream's
    message_start carries it (translated_stream.py) until the upstream's usage comes at
    the end, which a stream that broke off never got to (an Anthropic upstream counts
    in its own message_start)."""
    if isinstance(meter, Reported):
        return meter.writer.usage is None and bool(meter.writer.input_tokens)
    return (notes.get("protocol") or "anthropic") != "anthropic" and meter.stop_reason is None \
        and bool(meter.tokens().input_tokens)


def _kind(notes: dict[str, Any]) -> str:
    if notes.get("intercepted"):
        return "intercepted"
    if notes.get("local"):
        return "refused" if "error" in notes else "local"
    return "routed" if "requested_model" in notes else "forwarded"


def _error_type(flow: http.HTTPFlow, status: int, meter: Meter | Reported | None) -> str | None:
    response = flow.response
    if meter is not None and meter.error_type:
        return meter.error_type
    if status and flow.error is not None and flow.error.msg != CLIENT_GONE:
        return ERROR_TYPES.get(status, "api_error")  # an answer that broke off (Heartbeat told the client)
    if status < 400:
        return None
    if response is not None and len(response.raw_content or b"") <= ERROR_SCAN_LIMIT:
        try:
            error_type = json.loads(response.content or b"")["error"]["type"]
            if isinstance(error_type, str):
                return error_type
        except (ValueError, KeyError, TypeError):
            pass
    return ERROR_TYPES.get(status, "api_error")


# -- the comment column -----------------------------------------------------------
# mitmweb's list gives the comment about 100 characters at 1600 px with a flow open
# beside it (docs/dashboard.md): the outcome comes first, then what was asked of whom,
# and the long account of a failure is in the flow (its Error tab, the content view).

BROKEN, FAILED, FAILOVER, LOCAL, INTERCEPTED = "⚠", "❌", "🔄", "🏠", "⚡"


def line(summary: dict[str, Any]) -> str:
    """The summary in one line for mitmweb's comment column."""
    if summary["kind"] == "forwarded":
        return (f"{outcome(summary)} · passthrough {summary['method']} {summary['path']} → {summary['provider']} · "
                f"{_s(summary['total_ms'])}")
    parts = [outcome(summary), f"{summary['requested_model']} → {summary['provider']}/{summary['model']}"]
    if summary["input_tokens"] or summary["output_tokens"] or summary["cached_tokens"]:
        cached = f" +{summary['cached_tokens']} cached" if summary["cached_tokens"] else ""
        estimated = " (estimate)" if summary.get("tokens_estimated") else ""
        parts.append(f"in {summary['input_tokens']}{estimated}{cached} out {summary['output_tokens']}")
    if summary["ttft_ms"] is not None and summary["stream"] and not summary["error_type"]:
        parts.append(f"ttft {_s(summary['ttft_ms'])}")
    parts.append(_s(summary["total_ms"]))
    trail = summary["failover"]
    who = " → ".join(trail) if len(trail) > 1 else _one_attempt(summary)
    parts.append(who + (f" [{summary['route']}]" if summary["route"] else ""))
    if summary.get("quota") and (windows := [w for w in summary["quota"]["windows"] if w["used"] is not None]):
        parts.append("quota " + ", ".join(f"{w['name']} {w['used'] * 100:.0f}%" for w in windows))
    return " · ".join(parts)


def outcome(summary: dict[str, Any]) -> str:
    """What the client got, first: its status, and the error it read; a stream that
    began with a 200 and then broke off reads as the error it ended in."""
    status, error_type = summary["status"], summary["error_type"]
    mark = FAILOVER if summary.get("attempts", 1) > 1 else ""
    if not status:
        return f"{FAILED}{mark} no answer"
    if error_type and status < 400:
        return f"{BROKEN}{mark} {status}, then {error_type}"
    if error_type:
        return f"{FAILED}{mark} {status} {error_type}"
    return f"{mark} {status}".lstrip()


def _one_attempt(summary: dict[str, Any]) -> str:
    """The credential, and how its one attempt failed if it did ("timeout", "reset")."""
    trail = summary["failover"]
    how = trail[0].rpartition(" ")[2] if trail else ""
    return f"{summary['credential']}" + (f" {how}" if how and not how.isdigit() and how != "…" else "")


def _s(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _show(flow: http.HTTPFlow, notes: dict[str, Any], summary: dict[str, Any]) -> None:
    kind = summary["kind"]
    if kind == "local":
        what = flow.comment or f"{summary['method']} {summary['path']}"  # e.g. the Router's count_tokens note
        flow.comment = f"{LOCAL} {summary['status']} · {what}"
        flow.marked = flow.marked or ":house:"
        return
    if kind == "refused":  # its mark was set with the answer
        flow.comment = f"{BROKEN} {summary['status']} {summary['error_type']} · modelmux: {notes.get('error')}"
        return
    if kind == "intercepted":  # the Router's comment says what it answered, and marked it
        flow.comment = f"{INTERCEPTED} {summary['status']} · {flow.comment}"
        return
    gone = flow.error is not None and flow.error.msg == CLIENT_GONE
    flow.comment = line(summary) + (" · client disconnected" if gone else "")
    if summary["error_type"]:
        flow.marked = ":warning:" if summary["status"] and summary["status"] < 400 else ":x:"
    elif summary["attempts"] > 1:
        flow.marked = ":arrows_counterclockwise:"


def _finished(flow: http.HTTPFlow, notes: dict[str, Any]) -> None:
    """A flow mitmproxy ended with an error reads as finished, as it is for the client:
    the error page it got becomes the flow's response, a stream that broke off gets its
    end time, and the Error tab gives modelmux's account instead of mitmproxy's words
    for the connection it cancelled itself ("server closed connection" on a timeout).
    What the client got was sent already: none of this reaches it."""
    error = flow.error
    if error is None or error.msg in (CLIENT_GONE, error.KILLED_MESSAGE) or notes.get("failure") == "cancelled":
        return
    if (page := sent_page(flow)) is not None:
        flow.response = page
    elif flow.response is not None and flow.response.timestamp_end is None:
        flow.response.timestamp_end = error.timestamp
    if notes.get("error"):
        error.msg = notes["error"]


# -- what the content view shows ----------------------------------------------------

def _keep(flow: http.HTTPFlow, notes: dict[str, Any], meter: Meter | Reported | None, raw: list[bytes] | None) -> None:
    response = flow.response
    if meter is not None and meter.kept is not None and response is not None:
        response.content = meter.body()  # mitmproxy kept none; the client already has it all
    if notes.get("relay"):
        _show_winning_request(flow, notes)
    client = notes.get("client_request")
    if client is not None and client.get("body") == flow.request.content:
        client["body"] = None  # the same bytes are the request's content: kept once
    upstream = notes.pop("upstream_answer", None)
    if raw is not None and response is not None:
        upstream = as_kept(response, b"".join(raw))
    if upstream is not None and response is not None and upstream["body"] != response.content:
        notes["upstream_response"] = upstream


def _show_winning_request(flow: http.HTTPFlow, notes: dict[str, Any]) -> None:
    """A relayed flow went to the relay; the record shows what the last attempt sent.
    On a copy: mitmproxy answers the client's own request (its `Connection: close`) after
    this hook, and the request the upstream got has no word of the client's connection."""
    attempts = notes.get("attempts") or []
    final = attempts[-1].pop("sent", None) if attempts else None
    if final is not None:
        request = flow.request = flow.request.copy()
        url, mark, query = final["url"].partition("?")
        request.url = url
        request.path += mark + query  # a redacted secret in it has "…", which the URL's setter refuses
        request.headers = http.Headers()
        for name, value in final["headers"]:
            request.headers.add(name, value)
        request.content = final["body"]
        notes["protocol"] = attempts[-1].get("protocol", notes.get("protocol"))
        last = attempts[-1]
        if "answer" in last:
            notes["upstream_answer"] = last.pop("answer")
        elif "response_body" in last:  # the upstream's error, which the client got in Anthropic's words
            notes["upstream_answer"] = {"status": last["status"], "headers": last.pop("response_headers"),
                                        "body": last.pop("response_body")}
    for attempt in attempts[:-1]:
        sent = attempt.pop("sent", None)
        if sent is not None:
            attempt["request_body"] = None if sent["body"] == flow.request.content else sent["body"]

