"""Overview: the gateway's page at GET /modelmux/overview (credentials, usage by day,
recent errors), and the recent errors it lists, served as GET /modelmux/errors.

The page's files hold no data, so they are open (InboundAuth lets them through without
a key): a browser cannot send a header when it navigates, and a key in the URL would
reach logs and history. The page asks for the gateway key, keeps it in the tab's
sessionStorage and sends it as x-modelmux-key on its fetches of /modelmux/credentials,
/modelmux/usage and /modelmux/errors, which need an admin key as every /modelmux/* path.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from importlib import resources
from typing import Any

from mitmproxy import ctx
from mitmproxy import http

from modelmux.addons.answers import answer, answer_json, request_path
from modelmux.addons.notes import Notes, find_notes
from modelmux.addons.settings import Settings
from modelmux.config.types import Config
from modelmux.credentials.cooldowns import iso
from modelmux.replay.scrubbing import Scrubber
from modelmux.secrets import configured

# The page's own files (modelmux/static/), by path: no data in any of them.
PAGES: dict[str, tuple[str, str]] = {
    "/modelmux/overview": ("overview.html", "text/html; charset=utf-8"),
    "/modelmux/overview.js": ("overview.js", "text/javascript; charset=utf-8"),
    "/modelmux/overview.css": ("overview.css", "text/css; charset=utf-8"),
    # Its icon: without one a browser asks for /favicon.ico, which needs the key.
    "/modelmux/overview.svg": ("overview.svg", "image/svg+xml"),
}
ERRORS_PATH = "/modelmux/errors"
RECENT = 50  # errors kept, newest first: this gateway's, since it started
MESSAGE_LIMIT = 500  # characters of an error's message kept
ANSWER_SCAN_LIMIT = 64 * 1024  # an error answer longer than this is not read for its message
# Only the page's own files may run or style it, it fetches only from the gateway, and
# no other site may frame it.
PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class Overview:
    """Keeps the newest RECENT errors from the Dashboard's flow summaries; `page`, which
    the chain puts before the Router, answers the page and the errors."""

    def __init__(self, settings: Settings) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.scrubber = Scrubber()
        self.page = _Page(self)
        settings.subscribe(self._configure)

    def _configure(self, config: Config) -> None:
        self.scrubber = Scrubber(configured(config))

    def response(self, flow: http.HTTPFlow) -> None:
        self._note(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._note(flow)

    def _note(self, flow: http.HTTPFlow) -> None:
        """Runs after the Dashboard, which completed the summary, and the Redactor."""
        notes = find_notes(flow)
        summary = notes.get("summary") if notes else None
        if not isinstance(summary, dict) or not (summary.get("error_type") or summary.get("status", 0) >= 400):
            return
        if any(entry["flow"] == flow.id for entry in self.recent):  # a flow may end in response and error
            return
        assert notes is not None
        message = _message(flow, notes)
        self.recent.appendleft({
            "flow": flow.id,
            "time": iso(summary["time"]),
            **{name: summary.get(name) for name in ("kind", "method", "status", "error_type", "requested_model",
                                                    "provider", "model", "credential", "client_key", "failover")},
            "path": self.scrubber.text(str(summary.get("path") or "")),
            # An upstream may quote a key in its message: configured ones and key-shaped strings go.
            "message": self.scrubber.text(message[:MESSAGE_LIMIT]) if message else None,
        })

    def document(self) -> dict[str, Any]:
        """GET /modelmux/errors: newest first, each with its flow's address in mitmweb
        when mitmweb runs (it may have dropped the flow since: modelmux_max_flows)."""
        web = web_ui()
        return {
            "kept": RECENT,
            "web_ui": web,
            "errors": [entry | {"link": f"{web}#/flows/{entry['flow']}" if web else None} for entry in self.recent],
        }


class _Page:
    """The page's files and the errors, answered before any other addon forwards them."""

    def __init__(self, overview: Overview) -> None:
        self.overview = overview

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or flow.request.method not in ("GET", "HEAD"):
            return
        path = request_path(flow)
        if path in PAGES:
            name, content_type = PAGES[path]
            answer(flow, 200, _file(name), {"content-type": content_type, **PAGE_HEADERS})
        elif path == ERRORS_PATH:
            answer_json(flow, 200, self.overview.document())


@functools.cache
def _file(name: str) -> bytes:
    return resources.files("modelmux.static").joinpath(name).read_bytes()


def web_ui() -> str | None:
    """mitmweb's address, without its token (the browser that opened it once has its
    cookie); None under mitmdump, where its options do not exist."""
    options = ctx.options
    if "web_port" not in options:
        return None
    host = options.web_host or "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{options.web_port}/"


def _message(flow: http.HTTPFlow, notes: Notes) -> str | None:
    """What went wrong in words: modelmux's account of it, else the error answer's message."""
    if notes.get("error"):
        return str(notes["error"])
    response = flow.response
    if response is None or len(response.raw_content or b"") > ANSWER_SCAN_LIMIT:
        return None
    try:
        message = json.loads(response.content or b"")["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return None
    return message if isinstance(message, str) else None
