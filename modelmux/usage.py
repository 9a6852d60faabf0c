"""Usage statistics: one record per routed request, kept in a local JSON Lines file so
the numbers survive a restart, and the per-day tallies `modelmux usage` and
`GET /modelmux/usage` show.

Pure: the gateway's Usage addon feeds it the Dashboard's summaries and hands it the
lines to append; the CLI reads the file with it when the gateway is not running.
Records carry no bodies and no secrets: a credential appears by its label only.
"""

from __future__ import annotations

import array
import bisect
import itertools
import json
import math
import os
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import NoneType
from typing import Any

from modelmux.config.file_problems import FileProblem, plural
from modelmux.config.paths import config_state

VERSION = 1
MAX_FILE_BYTES = 8 << 20  # past this the file is renamed to <name>.1 (replacing it): ≤ 16 MiB in all
SAMPLES = 512  # time-to-first-token samples kept per day, provider, credential and model
MAX_DAYS = 366  # days of tallies kept in memory, and the longest period a report covers
GROUPINGS: dict[str, tuple[str, ...]] = {
    "all": ("provider", "credential", "model"),
    "provider": ("provider",),
    # Labels and model names are only unique within a provider: "main" may be a label of two.
    "model": ("provider", "model"),
    "credential": ("provider", "credential"),
    "client_key": ("client_key",),  # server.api_keys' labels (default: server.api_key's)
}
KEY_FIELDS = ("provider", "credential", "model", "client_key")  # what a tally's key holds
COUNTERS = ("requests", "errors", "input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens")

Key = tuple[str | None, str | None, str | None, str | None]  # provider, credential, model, client key

# A record's fields in file order: the types a value may have, and what a summary that
# lacks one (or has a wrong type) gets; `...` means required.
_TEXT, _COUNT, _MS = frozenset({str, NoneType}), frozenset({int}), frozenset({int, float, NoneType})
_TIME = frozenset({int, float})
_KINDS = {_TEXT: "text or null", _COUNT: "a whole number ≥ 0", _MS: "a number ≥ 0 or null", _TIME: "a number ≥ 0"}
_FIELDS: dict[str, tuple[frozenset[type], Any]] = {
    "time": (_TIME, ...),
    "provider": (_TEXT, None),
    "credential": (_TEXT, None),
    "model": (_TEXT, None),
    "requested_model": (_TEXT, None),
    "status": (_COUNT, 0),
    "error_type": (_TEXT, None),
    "input_tokens": (_COUNT, 0),
    "cached_tokens": (_COUNT, 0),
    "cache_write_tokens": (_COUNT, 0),
    "output_tokens": (_COUNT, 0),
    "ttft_ms": (_MS, None),
    "total_ms": (_MS, None),
    "attempts": (_COUNT, 0),
    "client_key": (_TEXT, None),
}
# Fields a record of an older modelmux lacks, with what such a record means.
_LATER = {"client_key": None}


SUFFIX = ".usage.jsonl"


def usage_path(config_path: Path, environ: Mapping[str, str]) -> Path:
    """Where a config's usage records live by default: in the state directory, beside
    its credential state (`paths.config_state`)."""
    return config_state(config_path, SUFFIX, environ)


def local_day(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp).date()


@dataclass(frozen=True, slots=True)
class Record:
    """One routed request as the client saw it: what `modelmux usage` counts."""

    time: float  # epoch seconds when the client's request started
    provider: str | None  # the provider of the last upstream attempt
    credential: str | None  # its credential's label
    model: str | None  # the upstream model of the last attempt
    requested_model: str | None
    status: int  # what the client got; 0: nothing (it went away)
    error_type: str | None  # the Anthropic error type the client got, if any
    input_tokens: int  # uncached
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    ttft_ms: float | None
    total_ms: float | None
    attempts: int
    client_key: str | None = None  # the label of the gateway key it came with

    @classmethod
    def of_summary(cls, summary: Mapping[str, Any]) -> Record:
        """From the Dashboard's flow summary; a missing or mistyped value gets its default.
        Raises ValueError when the summary has no time."""
        values = {}
        for name, (types, default) in _FIELDS.items():
            value = summary.get(name)
            if not _fits(value, types):
                if default is ...:
                    raise ValueError(f"the summary has no {name}")
                value = default
            values[name] = value
        # As the file keeps them, so a restart reads back exactly what was counted.
        values["time"] = round(values["time"], 3)
        for name in ("ttft_ms", "total_ms"):
            if values[name] is not None:
                values[name] = round(values[name], 1)
        return cls(**values)

    @classmethod
    def parse(cls, line: str) -> Record:
        """One line of the file. Raises ValueError saying why it is not a record of this
        version, without quoting the line: the reason reaches /healthz."""
        try:
            item = json.loads(line)
        except ValueError:
            raise ValueError("not JSON") from None
        if not isinstance(item, dict) or item.get("v") != VERSION:
            raise ValueError(f"not a version {VERSION} usage record")
        for name, (types, _) in _FIELDS.items():
            if name not in item:
                if name not in _LATER:
                    raise ValueError(f"no {name}")
                item[name] = _LATER[name]
            if not _fits(item[name], types):
                raise ValueError(f"{name} is not {_KINDS[types]}")
        return cls(**{name: item[name] for name in _FIELDS})

    def line(self) -> str:
        fields = asdict(self)
        for name, meaning in _LATER.items():  # what an older record means by leaving it out
            if fields[name] == meaning:
                del fields[name]
        return json.dumps({"v": VERSION, **fields}, ensure_ascii=False, separators=(",", ":")) + "\n"

    @property
    def failed(self) -> bool:
        """The client got an error: an error status, or an error event in a 200 stream.
        A client that went away (status 0, no error type) cancelled; that is no error."""
        return self.status >= 400 or self.error_type is not None

    @property
    def key(self) -> Key:
        return self.provider, self.credential, self.model, self.client_key


def _fits(value: Any, types: frozenset[type]) -> bool:
    # By exact type: a bool is an int to isinstance, but a token count of `true` is
    # corrupt, not 1. Numbers must be finite and not negative (`0 <= nan` is false).
    kind = type(value)
    return kind in types and (kind is str or value is None or 0 <= value < math.inf)


class UsageFile:
    """The JSON Lines file and its one rotated predecessor (`<name>.1`). Appends are
    serialised, so the gateway's writer thread and its final flush never interleave."""

    def __init__(self, path: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.path = path
        self.rotated = path.with_name(path.name + ".1")
        self.max_bytes = max_bytes
        self.kept = 0  # records the last `records()` yielded
        self.skipped = 0  # corrupt lines it passed over
        self.first_skipped: str | None = None  # "FILE line N: why" of the first of them
        self._lock = threading.Lock()

    def records(self) -> Iterator[Record]:
        """Every record, oldest file first. A line that is not a record (a crash cut it
        short, someone edited the file) is skipped and counted."""
        self.kept, self.skipped, self.first_skipped = 0, 0, None
        for path in (self.rotated, self.path):
            try:
                file = path.open(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            with file:
                for number, line in enumerate(file, 1):
                    if not line.strip():
                        continue
                    try:
                        record = Record.parse(line)
                    except ValueError as e:
                        self.skipped += 1
                        self.first_skipped = self.first_skipped or f"{path} line {number}: {e}"
                    else:
                        self.kept += 1
                        yield record

    def skipped_problem(self) -> FileProblem | None:
        """What the last `records()` skipped. The lines stay in the file: every start says it again."""
        if not self.skipped:
            return None
        lines = plural(self.skipped, "line is not a usage record", "lines are not usage records")
        problem = f"{lines}, skipped (the first: {self.first_skipped})"
        return FileProblem(str(self.path), problem, plural(self.kept, "record"))

    def append(self, lines: list[str]) -> None:
        """Append `lines` (each ending in a newline), first rotating a file they would
        take past max_bytes. New files are private (0600). Raises OSError."""
        data = "".join(lines).encode()
        if not data:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self.max_bytes:
                os.replace(self.path, self.rotated)
                size = 0
            descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # A crash mid-line left the file without its final newline: end that line,
                # or the next record would be glued to it and lost too.
                if size and os.pread(descriptor, 1, size - 1) != b"\n":
                    data = b"\n" + data
                os.write(descriptor, data)
            finally:
                os.close(descriptor)


class Bucket:
    """Counters and time-to-first-token samples of one group of records. At most SAMPLES
    samples are kept (a uniform reservoir); each then stands for `ttft_count / kept`
    requests when buckets are merged, so a busy bucket weighs what it should."""

    __slots__ = (*COUNTERS, "ttft_count", "samples")

    def __init__(self) -> None:
        for name in COUNTERS:
            setattr(self, name, 0)
        self.ttft_count = 0
        self.samples = array.array("d")

    def add(self, record: Record, rng: random.Random) -> None:
        self.requests += 1
        self.errors += record.failed
        self.input_tokens += record.input_tokens
        self.cached_tokens += record.cached_tokens
        self.cache_write_tokens += record.cache_write_tokens
        self.output_tokens += record.output_tokens
        if record.ttft_ms is None:
            return
        self.ttft_count += 1
        if len(self.samples) < SAMPLES:
            self.samples.append(record.ttft_ms)
        elif (slot := rng.randrange(self.ttft_count)) < SAMPLES:
            self.samples[slot] = record.ttft_ms


class Group:
    """Buckets merged for a report: summed counters and weighted samples."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.weighted: list[tuple[float, float]] = []

    def absorb(self, bucket: Bucket) -> None:
        for name in COUNTERS:
            self.counts[name] += getattr(bucket, name)
        if bucket.samples:
            weight = bucket.ttft_count / len(bucket.samples)
            self.weighted += [(value, weight) for value in bucket.samples]

    def document(self) -> dict[str, Any]:
        p50, p95 = percentiles(self.weighted, (50, 95))
        return {
            **self.counts,
            "ttft_p50_ms": None if p50 is None else round(p50, 1),
            "ttft_p95_ms": None if p95 is None else round(p95, 1),
        }


def percentiles(weighted: list[tuple[float, float]], ps: tuple[float, ...]) -> list[float | None]:
    """Nearest rank: the p-th percentile is the smallest sample whose cumulative weight
    reaches p% of the total. With every weight 1 (no bucket past SAMPLES) that is the
    sample at rank ⌈p/100·n⌉ of the sorted n: the median of 4 samples is the 2nd.
    None without samples."""
    if not weighted:
        return [None] * len(ps)
    ordered = sorted(weighted)
    cumulative = list(itertools.accumulate(weight for _, weight in ordered))
    # p·total/100 is computed exactly whenever it is a whole number, so whole weights
    # give exact ranks (unlike 0.95 * 20, which is not 19.0).
    ranks = (bisect.bisect_left(cumulative, p * cumulative[-1] / 100) for p in ps)
    return [ordered[min(rank, len(ordered) - 1)][0] for rank in ranks]


class Tally:
    """Per local day, provider, credential and model: requests, errors, tokens and TTFT
    samples. Days older than MAX_DAYS before the newest are dropped."""

    def __init__(self, day_of: Callable[[float], date] = local_day) -> None:
        self.day_of = day_of
        self.days: dict[date, dict[Key, Bucket]] = {}
        self._rng = random.Random(VERSION)  # seeded: the same records give the same report

    def add(self, record: Record) -> None:
        day = self.day_of(record.time)
        buckets = self.days.get(day)
        if buckets is None:
            buckets = self.days[day] = {}
            oldest = max(self.days) - timedelta(days=MAX_DAYS - 1)
            for stale in [d for d in self.days if d < oldest]:
                del self.days[stale]
            if day not in self.days:
                return  # older than every day kept
        bucket = buckets.get(record.key)
        if bucket is None:
            bucket = buckets[record.key] = Bucket()
        bucket.add(record, self._rng)

    def report(self, days: int, by: str, now: float, daily: bool = False) -> dict[str, Any]:
        """The JSON document of GET /modelmux/usage: the `days` local days up to and
        including today, one row per group `by` names, busiest first, and the total.
        `daily` adds the same rows and total for each of those days, oldest first, days
        without requests included (the overview's charts)."""
        if by not in GROUPINGS:
            raise ValueError(f"by: one of {', '.join(GROUPINGS)}")
        if not 1 <= days <= MAX_DAYS:
            raise ValueError(f"days: a whole number from 1 to {MAX_DAYS}")
        last = self.day_of(now)
        first = last - timedelta(days=days - 1)
        fields = GROUPINGS[by]
        kept = [buckets for day, buckets in self.days.items() if first <= day <= last]
        document = {"days": days, "by": by, "from": first.isoformat(), "to": last.isoformat(), **_grouped(kept, fields)}
        if daily:
            each = (first + timedelta(days=n) for n in range(days))
            document["daily"] = [{"day": day.isoformat(), **_grouped([self.days.get(day, {})], fields)} for day in each]
        return document


def _grouped(days: list[dict[Key, Bucket]], fields: tuple[str, ...]) -> dict[str, Any]:
    """The rows (one per group of `fields`, busiest first) and the total of `days`' buckets."""
    groups: dict[tuple[str | None, ...], Group] = {}
    total = Group()
    for buckets in days:
        for key, bucket in buckets.items():
            named = dict(zip(KEY_FIELDS, key, strict=True))
            group = tuple(named[field] for field in fields)
            groups.setdefault(group, Group()).absorb(bucket)
            total.absorb(bucket)
    rows = [dict(zip(fields, group, strict=True)) | each.document() for group, each in groups.items()]
    rows.sort(key=lambda row: (-row["requests"], *[row[f] or "" for f in fields]))
    return {"rows": rows, "total": total.document()}


def load(file: UsageFile, tally: Tally) -> int:
    """Add every record of `file` to `tally`; how many there were."""
    count = 0
    for record in file.records():
        tally.add(record)
        count += 1
    return count


def reports_from(file: UsageFile, periods: list[int], by: str, now: float) -> list[dict[str, Any]]:
    """What the gateway would answer for each period, read from its file (it is not
    running). Raises OSError, ValueError as Tally.report does."""
    tally = Tally()
    load(file, tally)
    return [tally.report(days, by, now) | {"file": str(file.path)} for days in periods]


def table(document: Mapping[str, Any]) -> list[str]:
    """A report as `modelmux usage` prints it: a title, then aligned rows and their total."""
    days = document["days"]
    title = f"today ({document['to']})" if days == 1 else f"last {days} days ({document['from']} to {document['to']})"
    if not document["rows"]:
        return [title, "  no requests"]
    fields = GROUPINGS[document["by"]]
    rows = [
        [*fields, "requests", "errors", "input", "cached", "output", "ttft p50", "ttft p95"],
        *([*(row[f] or "-" for f in fields), *_figures(row)] for row in document["rows"]),
        ["total", *[""] * (len(fields) - 1), *_figures(document["total"])],
    ]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    names = len(fields)  # left-aligned; the figures after them right-aligned
    return [title] + [
        "  " + "  ".join(
            cell.ljust(width) if i < names else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _figures(counts: Mapping[str, Any]) -> list[str]:
    return [
        *(f"{counts[name]:,}" for name in ("requests", "errors", "input_tokens", "cached_tokens", "output_tokens")),
        _duration(counts["ttft_p50_ms"]),
        _duration(counts["ttft_p95_ms"]),
    ]


def _duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"
