"""Playback: lets `modelmux replay` give its replay server the next session's upstream
answers without starting another process.

The replay server is mitmdump with mitmproxy's own server replay (ServerPlayback); this
addon only swaps the flows it answers from, with ServerPlayback's own commands. A POST
to CONTROL_PATH whose body is a flow file's path clears the flows as its headers arrive,
so ServerPlayback lets the control request itself be (it answers requests only while it
has flows), and loads the file in the response hook, before the answer leaves: once
the caller has the answer, the new flows are in place.

    mitmdump -s modelmux/addons/playback.py --mode reverse:http://127.0.0.1:9@127.0.0.1:PORT ...
"""

from __future__ import annotations

import json
import logging

from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http

logger = logging.getLogger(__name__)

CONTROL_PATH = "/modelmux-replay/flows"


class Playback:
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.request.method != "POST" or flow.request.path != CONTROL_PATH:
            return
        ctx.master.commands.call("replay.server.stop")
        flow.response = http.Response.make(202)  # replaced in `response`, once loaded
        flow.metadata["modelmux_playback"] = True

    def response(self, flow: http.HTTPFlow) -> None:
        if not flow.metadata.get("modelmux_playback"):
            return
        path = (flow.request.content or b"").decode("utf-8", "surrogateescape")
        try:
            ctx.master.commands.call("replay.server.file", path)
        except exceptions.CommandError as e:
            flow.response = http.Response.make(400, f"cannot load {path}: {e}")
            return
        count = ctx.master.commands.call("replay.server.count")
        logger.info("playing back %d flows from %s", count, path)
        flow.response = http.Response.make(200, json.dumps({"flows": count}), {"content-type": "application/json"})


addons = [Playback()]
