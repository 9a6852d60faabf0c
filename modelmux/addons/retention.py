"""Retention: mitmweb keeps every flow in memory, so a long session would grow without
bound; this keeps the newest `modelmux_max_flows` (mitmproxy issues #4129, #3007)."""

from __future__ import annotations

from mitmproxy import ctx
from mitmproxy import http

from modelmux.addons.internals import stored_flows


class Retention:
    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_max_flows",
            int,
            500,  # with the Dashboard's kept bodies, a Claude Code flow holds a few hundred KB
            "The most flows mitmweb keeps; older finished ones are dropped (0: keep all).",
        )

    def response(self, flow: http.HTTPFlow) -> None:
        self._trim()

    def error(self, flow: http.HTTPFlow) -> None:
        self._trim()

    def _trim(self) -> None:
        view = ctx.master.addons.get("view")  # None under mitmdump, which keeps nothing
        limit = ctx.options.modelmux_max_flows
        if view is None or limit <= 0:
            return
        excess = view.store_count() - limit
        if excess <= max(1, limit // 10):
            return  # trimmed in batches, not on every flow
        for old in [f for f in stored_flows(view) if not f.live][:excess]:
            view.remove([old])  # one at a time: a batch makes mitmproxy log an alert
