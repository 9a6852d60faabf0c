"""The search for secrets where people read: what counts as a secret showing (the
whole value, or a run of it long enough to give it away), every place mitmweb shows a
flow (its API, its websocket push), and a failure message that says which secret
showed where, with the text around it, never printing a secret itself."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from browser import WAIT, DevTools
from gateway import Gateway
from mitmproxy import http
from mitmproxy.io import FlowReader
from wsproto.events import TextMessage

RUN = 12  # characters of a secret that give it away
EDGE = 6  # characters at a secret's start that keys share ("sk-ant", "sk-pro")
SHOWN = 4  # the last characters, which its redacted form (label…last4) shows
AROUND = 80  # characters of context either side of a leak in a failure message


@dataclass(frozen=True)
class Leak:
    secret: str  # its name, never its value
    artefact: str
    part: str  # "the whole secret", "its middle 12 characters", ...
    context: str  # the text around it, every piece of a secret masked

    def __str__(self) -> str:
        return f"{self.secret!r} ({self.part}) in {self.artefact}: …{self.context}…"


def fragments(value: str) -> list[tuple[str, str]]:
    """What of `value` may not show: the whole of it, and runs of RUN characters from its
    start (after its first EDGE), its middle and its end (before its last SHOWN), which a
    cut-off log line or a half-done replacement would leave."""
    found = [("the whole secret", value)]
    if len(value) >= EDGE + RUN + SHOWN:
        middle = (len(value) - RUN) // 2
        found += [(f"{RUN} characters of its start", value[EDGE:EDGE + RUN]),
                  (f"its middle {RUN} characters", value[middle:middle + RUN]),
                  (f"{RUN} characters of its end", value[-SHOWN - RUN:-SHOWN])]
    return found


def find_leaks(artefacts: Mapping[str, bytes], secrets: Mapping[str, str]) -> list[Leak]:
    """Every secret (by name) that shows in an artefact (by name), once per pair."""
    leaks = []
    for where, data in artefacts.items():
        for name, value in secrets.items():
            for part, text in fragments(value):
                at = data.find(text.encode())
                if at >= 0:
                    # An artefact's name may hold the secret too (a flow's path): masked as well.
                    leaks.append(Leak(name, _masked(where, secrets), part, _context(data, at, len(text.encode()), secrets)))
                    break
    return leaks


def describe(leaks: list[Leak], most: int = 60) -> str:
    lines = [str(leak) for leak in leaks[:most]]
    if len(leaks) > most:
        lines.append(f"(and {len(leaks) - most} more)")
    return f"{len(leaks)} secrets visible:\n" + "\n".join(lines)


def _context(data: bytes, at: int, length: int, secrets: Mapping[str, str]) -> str:
    """The text around a hit, masked: the hit, and the rest of a secret a part of it showed."""
    start, end = max(0, at - AROUND), min(len(data), at + length + AROUND)
    return _masked(data[start:end].decode("utf-8", "replace"), secrets).replace("\n", "⏎")


def _masked(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with every run of 6 or more characters of any secret shown as ‹name…last4›
    (the secret that covers most of the run)."""
    covered: dict[str, set[int]] = {}
    for name, value in secrets.items():
        for i in range(len(value) - 5):
            found = text.find(value[i:i + 6])
            while found >= 0:
                covered.setdefault(name, set()).update(range(found, found + 6))
                found = text.find(value[i:i + 6], found + 1)
    masked = set().union(*covered.values()) if covered else set()
    shown, i = [], 0
    while i < len(text):
        if i not in masked:
            shown.append(text[i])
            i += 1
            continue
        run = range(i, next((j for j in range(i, len(text)) if j not in masked), len(text)))
        name = max(covered, key=lambda n: len(covered[n].intersection(run)))
        shown.append(f"‹{name}…{secrets[name][-SHOWN:]}›")
        i = run.stop
    return "".join(shown)


def flows_in(path: Path) -> list[http.HTTPFlow]:
    """The flows of a flow file (`-w`, a recording)."""
    with path.open("rb") as file:
        return list(FlowReader(file).stream())


# -- mitmweb ---------------------------------------------------------------------------

def finished_flows(gateway: Gateway, count: int) -> list[dict[str, Any]]:
    """mitmweb's flow list once it holds `count` flows and the Dashboard has summed up
    each: a stream's summary (and its scrubbing) is done when it ends, which may be just
    after the client read its end. The summary is in the flows' metadata, which only
    mitmweb's export (/flows/dump) carries."""
    deadline = time.monotonic() + WAIT
    while True:
        dumped = list(FlowReader(BytesIO(gateway.web_api("/flows/dump").content)).stream())
        pending = [f for f in dumped if "summary" not in f.metadata.get("modelmux", {})]
        if len(dumped) >= count and not pending:
            return gateway.web_api("/flows").json()
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(dumped)} flows, not summed up: {[(f.request.path, f.comment) for f in pending]}")
        time.sleep(0.05)


def mitmweb_surfaces(gateway: Gateway, flows: list[dict[str, Any]],
                     views: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """Every GET of mitmweb's API a browser or script may make, for every flow: the list,
    the export, the event log, each message's content and each content view of it
    (`views`: only these)."""
    for path in ("/flows", "/flows/dump", "/events", "/state", "/options", "/commands"):
        yield f"GET {path}", gateway.web_api(path).content
    views = views or ["auto", *gateway.web_api("/state").json()["contentViews"]]
    for flow in flows:
        what = f"{flow['request']['method']} {flow['request']['path']} ({flow['comment']})"
        yield f"GET /flows, the entry of {what}", json.dumps(flow).encode()  # names the flow of a leak there
        for message in ("request", "response"):
            if not flow.get(message):
                continue
            base = f"/flows/{flow['id']}/{message}"
            if flow[message]["contentLength"] is not None:  # a body mitmproxy did not keep is a 500 here
                yield f"GET {base}/content.data of {what}", gateway.web_api(f"{base}/content.data").content
            for view in views:
                # mitmweb's route takes letters, digits, -, _ and %-escapes: "socket.io" needs %2E
                path = f"{base}/content/{quote(view, safe='').replace('.', '%2E')}.json"
                yield f"GET {path} of {what}", gateway.web_api(path).content


class Updates:
    """mitmweb's websocket push (/updates), every message kept as it arrives."""

    def __init__(self, gateway: Gateway) -> None:
        self.socket = DevTools(f"ws://127.0.0.1:{gateway.web_port}/updates?token={gateway.web_token}")
        self.messages: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        text = ""
        try:
            for event in self.socket._events():
                if isinstance(event, TextMessage):
                    text += event.data
                    if event.message_finished:
                        self.messages.append(text)
                        text = ""
        except OSError:
            pass  # closed

    def close(self) -> bytes:
        """Everything pushed, one message a line."""
        self.socket.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
        self._thread.join(5)
        return "\n".join(self.messages).encode()


class Poller:
    """GET /flows, /flows/dump and each unanswered flow's request body over and over,
    searching each answer at once: a secret on a flow for any moment between two of
    mitmproxy's hooks shows in some answer."""

    def __init__(self, gateway: Gateway, secrets: Mapping[str, str]) -> None:
        self.gateway = gateway
        self.secrets = secrets
        self.leaks: dict[tuple[str, str], Leak] = {}  # (secret, artefact) → the first seen
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.gateway.web_port}", timeout=10,
                          headers={"Authorization": f"Bearer {self.gateway.web_token}"}) as web:
            while not self._stop.is_set():
                try:
                    answers = {f"GET {path} (polled)": web.get(path).content for path in ("/flows", "/flows/dump")}
                    waiting = [f["id"] for f in json.loads(answers["GET /flows (polled)"]) if f.get("response") is None]
                    for id in waiting:
                        path = f"/flows/{id}/request/content.data"
                        answers[f"GET {path} (polled, in flight)"] = web.get(path).content
                except httpx.HTTPError:
                    return  # the gateway stopped: the test failed elsewhere
                for leak in find_leaks(answers, self.secrets):
                    self.leaks.setdefault((leak.secret, leak.artefact), leak)
                self.polls += 1

    def wait(self, rounds: int) -> None:
        """Until `rounds` more rounds of polling are done."""
        target, deadline = self.polls + rounds, time.monotonic() + WAIT
        while self.polls < target and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> list[Leak]:
        self._stop.set()
        self._thread.join(10)
        return list(self.leaks.values())
