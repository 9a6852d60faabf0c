"""The fleet's usage records on Redis (modelmux/addons/fleet.py; docs/team.md): every
gateway appends its records to one stream and counts the others', so `modelmux usage`
on any of them shows the fleet. Its own usage file keeps its own, as without a fleet."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis

from modelmux.addons.usage import Usage
from modelmux.credentials.fleet import Keys
from modelmux.usage import Record

KEPT = 500_000  # the fleet's newest records Redis keeps (about 150 MB)
BATCH = 5_000  # records read or written per round trip
READ_TIMEOUT = 5.0  # seconds one batch may take


class SharedUsage:
    def __init__(self, redis: aioredis.Redis, keys: Keys, instance: str, usage: Usage) -> None:
        self.redis = redis
        self.keys = keys
        self.instance = instance
        self.usage = usage
        self.read_up_to = "0-0"  # the id of the stream's last record counted here

    async def share(self) -> None:
        """Ours written, theirs read and counted. Raises what Redis raises."""
        while self.usage.unshared:
            batch = self.usage.unshared[:BATCH]
            async with asyncio.timeout(READ_TIMEOUT), self.redis.pipeline(transaction=False) as pipe:
                for record in batch:
                    pipe.xadd(self.keys.usage(), {"i": self.instance, "r": record.line()}, maxlen=KEPT, approximate=True)
                await pipe.execute()
            del self.usage.unshared[: len(batch)]
        while True:
            async with asyncio.timeout(READ_TIMEOUT):
                answer = await self.redis.xread({self.keys.usage(): self.read_up_to}, count=BATCH)
            entries = answer[0][1] if answer else []
            if not entries:
                return
            self.read_up_to = _text(entries[-1][0])
            self.usage.adopt(self._records(entries, skip_ours=True))

    async def resync(self) -> None:
        """The fleet's records are the tally: read whole (in batches, yielding to the
        flows between them), with ours that never reached Redis; then those written."""
        records: list[Record] = []
        start, last = "-", "0-0"
        while True:
            async with asyncio.timeout(READ_TIMEOUT):
                entries = await self.redis.xrange(self.keys.usage(), min=start, count=BATCH)
            records += self._records(entries, skip_ours=False)
            if entries:
                last = _text(entries[-1][0])
            if len(entries) < BATCH:
                break
            start = f"({last}"
            await asyncio.sleep(0)
        self.read_up_to = last
        self.usage.retally(records)
        await self.share()

    def _records(self, entries: list, skip_ours: bool) -> list[Record]:
        """The records of stream entries; ours are counted already when they come back."""
        records = []
        for _, fields in entries:
            if skip_ours and fields.get(b"i", b"").decode() == self.instance:
                continue
            with contextlib.suppress(ValueError, UnicodeDecodeError, KeyError):
                records.append(Record.parse(fields[b"r"].decode()))
        return records


def _text(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id
