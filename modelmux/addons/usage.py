"""Usage: counts every routed request per local day, provider, credential and model, from
the summary the Dashboard leaves on the flow, and appends one record per request to a
local file so the numbers survive a restart.

The counts are served by `GET /modelmux/usage` (answered by LocalAPI), the
`modelmux.usage` command and, through the endpoint, `modelmux usage`. The record format
is in modelmux/usage.py and docs/usage.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

from mitmproxy import command
from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from modelmux import usage
from modelmux.addons.settings import Settings
from modelmux.paths import adopt_beside
from modelmux.usage import Record, Tally, UsageFile

logger = logging.getLogger(__name__)

WRITE_INTERVAL = 1.0  # seconds between appends of the queued records
QUEUE_LIMIT = 10_000  # records waiting for the writer; past this the oldest are dropped
COUNTED = "usage_counted"  # flow.metadata["modelmux"] flag: a flow ends in response or error, rarely both


class Usage:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tally = Tally()
        self.file: UsageFile | None = None
        self._queue: list[str] = []
        self._writer: asyncio.Task | None = None
        self._write_failed = False

    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_usage_file",
            Optional[str],  # mitmproxy's option types predate `str | None`
            None,
            "Where a record of every routed request is appended (JSON Lines, past "
            f"{usage.MAX_FILE_BYTES >> 20} MiB renamed to FILE.1). Default: in modelmux's state "
            "directory, as <routes.yaml's name>-<digest of its path>.usage.jsonl. Empty: no file; "
            "counts start afresh with every start.",
        )

    def configure(self, updated: set[str]) -> None:
        if not {"modelmux_usage_file", "modelmux_config"} & updated:
            return
        path = self._path()
        if path == (self.file.path if self.file else None):
            return
        if path is not None and path.is_dir():
            raise exceptions.OptionsError(
                f"modelmux_usage_file: {path} is a directory; name a file in it, or set the option to '' "
                "to keep no usage file"
            )
        self.flush()  # what is queued belongs to the old file
        self.file = UsageFile(path) if path else None
        self.tally = Tally()
        if self.file:
            self._read(self.file)

    def _path(self) -> Path | None:
        value = ctx.options.modelmux_usage_file
        if value is None:
            assert self.settings.config
            config = self.settings.config.path
            path = usage.usage_path(config, os.environ)
            adopt_beside(config, usage.SUFFIX, path)
            return path
        return Path(value).expanduser() if value else None

    def _read(self, file: UsageFile) -> None:
        try:
            count = usage.load(file, self.tally)
        except OSError as e:
            logger.warning("cannot read the usage records in %s (%s); counting from now on", file.path, _why(e))
            return
        if file.skipped:
            logger.warning("skipped %d corrupt line%s of the usage records (the first: %s)",
                           file.skipped, "s" * (file.skipped != 1), file.first_skipped)
        logger.debug("usage: %d records from %s", count, file.path)

    # -- counting ---------------------------------------------------------------------

    def response(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        """Runs after the Dashboard's hook, which has completed the summary."""
        meta = flow.metadata.get("modelmux")
        summary = meta.get("summary") if isinstance(meta, dict) else None
        if not isinstance(summary, dict) or summary.get("kind") != "routed" or meta.get(COUNTED):
            return
        meta[COUNTED] = True
        try:
            record = Record.of_summary(summary)
        except ValueError as e:
            logger.warning("a routed flow's summary cannot be counted: %s", e)
            return
        self.tally.add(record)
        if self.file is None:
            return
        self._queue.append(record.line())
        if len(self._queue) > QUEUE_LIMIT:
            del self._queue[: len(self._queue) - QUEUE_LIMIT]

    # -- the file ---------------------------------------------------------------------

    def running(self) -> None:
        self._writer = asyncio_utils.create_task(self._write_loop(), name="modelmux usage writer", keep_ref=True)

    def done(self) -> None:
        if self._writer:
            self._writer.cancel()
        self.flush()

    async def _write_loop(self) -> None:
        """Appends in a thread: a slow disk must not stall every flow."""
        while True:
            await asyncio.sleep(WRITE_INTERVAL)
            if self._queue and self.file:
                lines, self._queue = self._queue, []
                await asyncio.to_thread(self._append, self.file, lines)

    def flush(self) -> None:
        """Append what is queued now (at exit, before the file changes)."""
        lines, self._queue = self._queue, []
        if lines and self.file:
            self._append(self.file, lines)

    def _append(self, file: UsageFile, lines: list[str]) -> None:
        try:
            file.append(lines)
        except OSError as e:
            if not self._write_failed:  # once: a read-only directory would say it for every batch
                logger.warning("cannot write usage records to %s (%s); today's counts will not survive a "
                               "restart", file.path, _why(e))
            self._write_failed = True

    # -- reports ----------------------------------------------------------------------

    def report(self, days: int, by: str) -> dict[str, Any]:
        """The GET /modelmux/usage document. Raises ValueError naming a bad argument."""
        document = self.tally.report(days, by, time.time())
        return document | {"file": str(self.file.path) if self.file else None}

    @command.command("modelmux.usage")
    def show(self, days: int = 7, by: str = "all") -> str:
        """Requests, errors, tokens and time to first token of the last `days` local days
        (1: today) as JSON, one row per provider, model, credential or, with `all`,
        provider, credential and model."""
        try:
            return json.dumps(self.report(days, by))
        except ValueError as e:
            raise exceptions.CommandError(str(e)) from e


def _why(error: OSError) -> str:
    """The reason with the path it concerns, which may be a parent of the file's."""
    return f"{error.strerror}: {error.filename}" if error.filename else str(error.strerror or error)
