"""The relay's own loopback server: there from the moment the addon loads."""

from __future__ import annotations

import asyncio

from mitmproxy.test import taddons

from modelmux.addons.relay import Relay


class Idle:
    """A Failover that is never asked to run a plan."""

    sender = None

    async def start(self, tls=None) -> None:
        pass

    async def stop(self) -> None:
        pass


def test_a_request_routed_before_the_relay_runs_waits_for_it():
    """mitmproxy may accept a request before the relay's `running` has finished: the
    port is known from `load` on, and the connection is served once the relay runs."""

    async def scenario() -> bytes:
        relay = Relay(Idle())  # type: ignore[arg-type]
        relay.load(None)  # in a master: it adds its last addon there
        assert relay.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: relay\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        await relay.running()
        status = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        await relay.done()
        return status

    with taddons.context():
        assert asyncio.run(scenario()) == b"HTTP/1.1 500 Internal Server Error\r\n"  # no plan: it answers all the same


def test_a_relay_that_never_ran_gives_its_port_back():
    relay = Relay(Idle())  # type: ignore[arg-type]
    with taddons.context() as context:
        relay.load(None)
        assert relay._socket is not None and context.master.addons.get("modelmux_last").parts == [relay.last]
        asyncio.run(relay.done())
        assert relay._socket is None and context.master.addons.get("modelmux_last") is None
