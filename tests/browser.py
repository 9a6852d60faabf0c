"""Headless Chromium for the dashboard tests, driven over the DevTools protocol.

No browser-automation package: Chromium listens for the DevTools protocol on a
websocket, and wsproto (a mitmproxy dependency) speaks websocket. A page is asked
for its text until the text a test waits for is there, so nothing depends on how
long mitmweb's single-page app takes to fetch its flows.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from gateway import end_process
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, Request, TextMessage

CHROMIUM_ENV = "MODELMUX_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WAIT = 30.0  # seconds a page may take to show what a test waits for
# Quiet and self-contained: no sign-in, sync, updates or field trials reaching out, a fresh profile.
FLAGS = [
    "--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
]  # fmt: skip


def find_chromium() -> str | None:
    """$MODELMUX_CHROMIUM, else the first Chromium or Chrome on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return os.environ[CHROMIUM_ENV]
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


class DevTools:
    """One DevTools websocket: `call` sends a command and returns its result; the
    events Chromium sends in between are not needed here and are dropped."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.socket = socket.create_connection((parts.hostname, parts.port), timeout=WAIT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.last_id = 0
        self._send(Request(host=parts.netloc, target=parts.path + (f"?{parts.query}" if parts.query else "")))
        for event in self._events():
            if isinstance(event, AcceptConnection):
                return
            if isinstance(event, RejectConnection):
                raise RuntimeError(f"DevTools refused the websocket: {event.status_code}")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self._send(TextMessage(json.dumps({"id": self.last_id, "method": method, "params": params})))
        text = ""
        for event in self._events():
            if not isinstance(event, TextMessage):
                continue
            text += event.data
            if not event.message_finished:
                continue
            message, text = json.loads(text), ""
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
        raise RuntimeError(f"DevTools closed during {method}")

    def close(self) -> None:
        self.socket.close()

    def _send(self, event: Any) -> None:
        self.socket.sendall(self.ws.send(event))

    def _events(self) -> Iterator[Any]:
        while True:
            data = self.socket.recv(1 << 16)
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, Ping):
                    self._send(event.response())
                elif isinstance(event, CloseConnection):
                    return
                else:
                    yield event
            if not data:
                return


class Browser:
    """A headless Chromium with a fresh profile and one page (a tab)."""

    def __init__(self, executable: str, width: int = 1600, height: int = 900) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="modelmux-chromium-"))
        flags = [*FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", f"--window-size={width},{height}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium will not start its sandbox as root (CI containers)
        self.log = self.profile / "chromium.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([executable, *flags, "about:blank"], stdout=log, stderr=subprocess.STDOUT)
        try:
            self.page = DevTools(self._page_socket())
            self.page.call("Page.enable")
        except BaseException:
            self.close()
            raise

    def _page_socket(self) -> str:
        """The websocket of the page Chromium opened: its DevTools port is in the profile."""
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}:\n{self.log.read_text(errors='replace')}")
            if port_file.is_file() and (port := port_file.read_text().split("\n")[0].strip()):
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]
            time.sleep(0.05)
        raise RuntimeError(f"chromium opened no DevTools port:\n{self.log.read_text(errors='replace')}")

    def open(self, url: str) -> None:
        """Load `url` afresh: mitmweb reads its hash route only when the app starts, so
        a change of the part after '#' alone must not be a same-page jump."""
        self.page.call("Page.navigate", url="about:blank")
        self.page.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        result = self.page.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self) -> str:
        """What the page shows, as a reader would copy it."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for(self, expression: str, what: str) -> Any:
        """The value of `expression` once it is truthy; `what` names it if it never is."""
        deadline = time.monotonic() + WAIT
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"the page never showed {what}; it shows:\n{self.text()}")
            time.sleep(0.1)

    def wait_for_text(self, *texts: str) -> str:
        """The page's text once it contains every one of `texts`."""
        wanted = json.dumps(list(texts))
        self.wait_for(f"{wanted}.every(t => document.body && document.body.innerText.includes(t))", repr(texts))
        return self.text()

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.page.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        if getattr(self, "page", None):
            self.page.close()
        end_process(self.process, 10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
