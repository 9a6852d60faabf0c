"""Usage: counts every routed request per local day, provider, credential and model, from
the summary the Dashboard leaves on the flow, and appends one record per request to a
local file so the numbers survive a restart.

The counts are served by `GET /modelmux/usage` (answered by LocalAPI), the
`modelmux.usage` command and, through the endpoint, `modelmux usage`. The record format
is in modelmux/usage.py and docs/usage.md. Several gateways sharing one state on Redis
count the fleet's records (the Fleet addon shares them; docs/team.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from mitmproxy import command
from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from modelmux.addons.notes import find_notes
from modelmux import usage
from modelmux.addons.settings import Settings
from modelmux.config.file_problems import FileProblem, plural, reason
from modelmux.config.paths import adopt_beside
from modelmux.usage import Record, Tally, UsageFile

logger = logging.getLogger(__name__)

WRITE_INTERVAL = 1.0  # seconds between appends of the queued records: what a kill -9 can lose (docs/usage.md)
QUEUE_LIMIT = 10_000  # records waiting for the writer; past this the oldest are dropped
UNSHARED_LIMIT = 100_000  # records kept for a fleet whose Redis is away; the file keeps them all
COUNTED = "usage_counted"  # a notes flag: a flow ends in response or error, rarely both


class Usage:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tally = Tally()
        self.file: UsageFile | None = None
        self._queue: list[Record] = []  # written as lines by the writer, in its thread (25 µs each under load)
        self._writer: asyncio.Task | None = None
        self._read_problem: FileProblem | None = None  # what reading the file at start skipped
        self._unwritten = 0  # records that never reached the file
        self._unwritten_why = ""  # the last reason
        self._lost_lock = threading.Lock()
        self.shared = False  # the fleet's records are counted (routes.yaml's state: {backend: redis}; the Fleet addon)
        self.unshared: list[Record] = []  # counted here, not yet in the fleet's records

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
        self._read_problem, self._unwritten = None, 0  # problems are the file's in use
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
            self._read_problem = FileProblem(str(file.path), f"cannot be read ({reason(e)})",
                                             "nothing of earlier days: counting from now on")
        else:
            self._read_problem = file.skipped_problem()
            logger.debug("usage: %d records from %s", count, file.path)
        if self._read_problem:
            logger.warning("usage records: %s", self._read_problem.text())

    # -- counting ---------------------------------------------------------------------

    def response(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        """Runs after the Dashboard's hook, which has completed the summary."""
        meta = find_notes(flow)
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
        if self.shared:
            self.unshared.append(record)
            if len(self.unshared) > UNSHARED_LIMIT:  # Redis away long: the file keeps them
                del self.unshared[: len(self.unshared) - UNSHARED_LIMIT]
        if self.file is None:
            return
        self._queue.append(record)
        if len(self._queue) > QUEUE_LIMIT:  # the disk stalls: memory must not grow without bound
            self._lost(self.file, len(self._queue) - QUEUE_LIMIT, f"the writer fell {QUEUE_LIMIT:,} records behind")
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
                records, self._queue = self._queue, []
                await asyncio.to_thread(self._append, self.file, records)

    def flush(self) -> None:
        """Append what is queued now (at exit, before the file changes)."""
        records, self._queue = self._queue, []
        if records and self.file:
            self._append(self.file, records)

    def _append(self, file: UsageFile, records: list[Record]) -> None:
        try:
            file.append([record.line() for record in records])
        except OSError as e:
            self._lost(file, len(records), reason(e))

    def _lost(self, file: UsageFile, count: int, why: str) -> None:
        """`count` records will never reach `file`: said once in the log (a read-only
        directory would say it for every batch), and counted for /healthz. Called from
        the writer's thread and from the event loop."""
        with self._lost_lock:
            if not self._unwritten:
                logger.warning("cannot write usage records to %s (%s); today's counts will not survive a restart",
                               file.path, why)
            self._unwritten += count
            self._unwritten_why = why

    def problems(self) -> list[FileProblem]:
        """For /healthz, as long as the gateway runs: what reading the file skipped, and
        the records that could not be appended."""
        problems = [self._read_problem] if self._read_problem else []
        if self._unwritten and self.file:
            problems.append(FileProblem(
                str(self.file.path), f"{plural(self._unwritten, 'record')} could not be appended (the last time: "
                f"{self._unwritten_why})", "their counts in memory, until the gateway stops"))
        return problems

    # -- the fleet's records ----------------------------------------------------------

    def adopt(self, records: Iterable[Record]) -> None:
        """Other gateways' records."""
        for record in records:
            self.tally.add(record)

    def retally(self, records: Iterable[Record]) -> None:
        """Count the fleet's records afresh (it was away, or this gateway just started),
        and ours that it does not have yet."""
        self.tally = Tally()
        self.adopt(records)
        self.adopt(self.unshared)

    # -- reports ----------------------------------------------------------------------

    def report(self, days: int, by: str, daily: bool = False) -> dict[str, Any]:
        """The GET /modelmux/usage document. Raises ValueError naming a bad argument."""
        document = self.tally.report(days, by, time.time(), daily)
        return document | {"file": str(self.file.path) if self.file else None}

    @command.command("modelmux.usage")
    def show(self, days: int = 7, by: str = "all", daily: bool = False) -> str:
        """Requests, errors, tokens and time to first token of the last `days` local days
        (1: today) as JSON, one row per provider, model, credential or, with `all`,
        provider, credential and model; `daily`: the same for each day too."""
        try:
            return json.dumps(self.report(days, by, daily))
        except ValueError as e:
            raise exceptions.CommandError(str(e)) from e
