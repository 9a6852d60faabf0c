"""Recorder: `modelmux serve --record FILE` keeps the session's flows, secrets scrubbed,
as regression cases and bug reports (`modelmux replay FILE`).

Each flow is written when it ends, as the Dashboard captured it (contract.md): the
request sent upstream, what the client sent and received, the raw upstream answer and
every failed attempt. Only a scrubbed copy is written: the live flow keeps its bytes for
mitmweb and the other addons. Each record also carries the routes.yaml it ran with, so
a replay needs nothing but the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy import io

from modelmux.addons import vault
from modelmux.addons.answers import request_path
from modelmux.addons.internals import forget_backup
from modelmux.addons.notes import find_notes, notes_of
from modelmux.addons.settings import Settings
from modelmux.config.types import Credential
from modelmux.headers import every_token
from modelmux.replay.recordings import RECORD_VERSION
from modelmux.replay.scrubbing import Scrubber
from modelmux.secrets import configured

logger = logging.getLogger(__name__)

# Management and health checks are not part of a session (`modelmux status` polls them).
UNRECORDED_PREFIXES = ("/healthz", "/modelmux/")
MAX_CLIENT_TOKENS = 64  # a session has one or two; a bound keeps a long one small


class Recorder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._file: IO[bytes] | None = None
        self._writer: io.FlowWriter | None = None
        self._client_tokens: dict[str, None] = {}  # insertion-ordered set: every client token seen

    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_record",
            str,
            "",
            "Append every flow of this session to this file, secrets scrubbed, with what a "
            "replay needs (`modelmux replay FILE`). Empty: record nothing.",
        )

    def configure(self, updated: set[str]) -> None:
        if "modelmux_record" not in updated:
            return
        self._close()
        if not ctx.options.modelmux_record:
            return
        path = Path(ctx.options.modelmux_record).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab")
        except OSError as e:
            raise exceptions.OptionsError(
                f"modelmux_record: cannot write {path} ({e.strerror}); pick a writable path"
            ) from e
        self._writer = io.FlowWriter(self._file)
        logger.info("recording flows to %s", path)

    def done(self) -> None:
        self._close()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Collect the client's tokens before any addon replaces or redacts them: each is
        scrubbed from every later record, wherever an upstream echoes it."""
        if self._writer is None:
            return
        headers = vault.client_tokens(flow.request)  # the flow holds them sealed
        for token in every_token(headers):
            if token not in self._client_tokens and len(self._client_tokens) < MAX_CLIENT_TOKENS:
                self._client_tokens[token] = None

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def _record(self, flow: http.HTTPFlow) -> None:
        if self._writer is None or self._file is None:
            return
        notes = find_notes(flow)
        if not notes or "summary" not in notes or request_path(flow).startswith(UNRECORDED_PREFIXES):
            return
        scrubber = self.scrubber()
        record = scrubbed(flow, scrubber)
        config = self.settings.config
        notes_of(record)["record"] = {
            "version": RECORD_VERSION,
            "routes": scrubber.text(config.source) if config else "",
        }
        try:
            self._writer.add(record)
            self._file.flush()  # a session killed mid-way keeps every finished flow
        except (OSError, ValueError) as e:  # ValueError: metadata tnetstring cannot hold
            logger.error("cannot record %s %s: %s", flow.request.method, request_path(flow), e)

    def scrubber(self) -> Scrubber:
        """Every secret the gateway knows: all providers' keys, its own key, and the
        clients' tokens seen so far."""
        config = self.settings.config
        # First: a client sending a configured key gets that key's label.
        known = configured(config, gateway="modelmux-key") if config else []
        return Scrubber(known + [Credential("client", token) for token in self._client_tokens])

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._writer = None


def scrubbed(flow: http.HTTPFlow, scrubber: Scrubber) -> http.HTTPFlow:
    """A copy of `flow` with no secret in its request, response, metadata or comment."""
    record = flow.copy()
    forget_backup(record)
    _scrub_message(record.request, scrubber)
    record.request.path = scrubber.text(record.request.path)
    if record.response is not None:
        _scrub_message(record.response, scrubber)
    if record.error is not None:
        record.error.msg = scrubber.text(record.error.msg)
    record.metadata = scrubber.tree(record.metadata)
    record.comment = scrubber.text(record.comment)
    return record


def _scrub_message(message: http.Message, scrubber: Scrubber) -> None:
    fields = [(n.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape")) for n, v in message.headers.fields]
    message.headers = http.Headers(
        [(n.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape")) for n, v in scrubber.headers(fields)]
    )
    if message.raw_content is None:
        return
    try:
        content, decoded = message.get_content() or b"", True
    except ValueError:  # a content-encoding that does not decode: scrub the bytes as they are
        content, decoded = message.raw_content, False
    clean = scrubber.data(content)
    if clean == content:
        return
    if decoded:
        message.content = clean
    else:
        message.raw_content = clean
