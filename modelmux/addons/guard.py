"""Guard: no request leaves unrouted, whichever addon fails.

mitmproxy catches an exception raised in an addon's hook, logs it ("Addon error") and
goes on (addonmanager.safecall): the rest of that script's addons are skipped, then
mitmproxy's own run, and the flow is sent wherever its URL points. A request modelmux
had not routed yet went to the reverse target (api.anthropic.com) with the client's
headers, whatever routes.yaml's default; one already routed went to its upstream
without the addons after the one that failed (issue 17). So the Guard puts a last
addon at the very end of mitmproxy's chain; when any addon's `requestheaders` or
`request` hook raised for a flow (internals.AddonErrors), it answers the flow itself
with a 500 `api_error`: modelmux's failure, not the client's, which the client may
retry. The traceback stays in the log, where mitmproxy put it, never in the answer.
"""

from __future__ import annotations

import logging
import weakref

from mitmproxy import http

from modelmux.addons.answers import answer_error, request_path
from modelmux.addons.internals import AddonErrors, add_last, remove_last
from modelmux.errors import GatewayError

logger = logging.getLogger(__name__)


class Guard:
    """First in modelmux's chain, so that its `load` runs before any other addon can fail."""

    def __init__(self) -> None:
        self.errors = AddonErrors()
        self.last = Last(self.errors)

    def load(self, loader) -> None:
        self.errors.install()
        add_last(self.last)

    def done(self) -> None:
        remove_last(self.last)
        self.errors.uninstall()


class Last:
    """Runs after every other addon, mitmproxy's own included (internals.add_last)."""

    def __init__(self, errors: AddonErrors) -> None:
        self.errors = errors
        self._failed: weakref.WeakKeyDictionary[http.HTTPFlow, str] = weakref.WeakKeyDictionary()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if failure := self.errors.pop():
            self._failed[flow] = failure  # answered in `request`, after every addon's request hook

    def request(self, flow: http.HTTPFlow) -> None:
        failure = self.errors.pop() or self._failed.pop(flow, None)
        if failure is None or flow.error or not flow.live:
            return
        logger.warning("%s %s: an addon raised %s (traceback above); answered 500 instead of sending it",
                       flow.request.method, request_path(flow), failure)
        answer_error(flow, GatewayError(
            500, f"modelmux failed on this request ({failure} in one of its addons; the gateway log has the "
                 "traceback); it was not sent anywhere"))
