"""The real gateway, `mitmdump -s addons/router.py` (or mitmweb, the dashboard), as a
subprocess for tests, started with the design's own command line."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from modelmux.cli.launcher import web_options
from modelmux.config.paths import config_state

REPO = Path(__file__).resolve().parent.parent
MITMDUMP = Path(sys.executable).parent / "mitmdump"
MITMWEB = Path(sys.executable).parent / "mitmweb"
# mitmweb prints its UI's address with the token it made up; `modelmux run --web` shows the same line.
WEB_UI_LINE = re.compile(rb"Web server listening at (http://\S+/\?token=(\w+))")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_process(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Gateway:
    """Writes `routes` to a routes.yaml, runs mitmdump with the addon on a free port,
    and keeps its console output in `log` for tests that grep it. With `web`, mitmweb
    with the launcher's `--web` settings on a free UI port: `web_url` (with the token)
    and `web_api` reach it as a browser would. With `model_lists`, it asks the providers'
    model lists after start-up, as it does by default: off otherwise, because tests count
    what their fakes received, and those asks would race with the test's requests."""

    def __init__(self, directory: Path, routes: str, env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None, mode: str | None = None, web: bool = False,
                 model_lists: bool = False) -> None:
        self.config = directory / "routes.yaml"
        self.config.write_text(routes)
        self.log = directory / "gateway.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Its credential state and usage records stay in the test's directory.
        self.env = {**os.environ, "MODELMUX_STATE_DIR": str(directory / "state"), **(env or {})}
        self.extra_args = (extra_args or []) + ([] if model_lists else ["--set", "modelmux_model_lists=false"])
        self.mode = mode or f"reverse:https://api.anthropic.com@127.0.0.1:{self.port}"
        self.listen = ("127.0.0.1", self.port) if mode is None else (None, None)  # mitmweb's footer
        self.web = web
        self.web_port = free_port() if web else None
        self.web_url = ""
        self.web_token = ""
        self._web_client: httpx.Client | None = None
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        """The design's own command line (no connection_strategy: the addon sets it)."""
        return [
            str(MITMWEB if self.web else MITMDUMP), "-s", str(REPO / "addons" / "router.py"),
            "--mode", self.mode,
            "--set", f"modelmux_config={self.config}",
            *(web_options(self.web_port, *self.listen) if self.web else []),
            *self.extra_args,
        ]

    def start(self) -> Gateway:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200 and self._web_ready():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway never became healthy:\n{self.log.read_text()}")

    def _web_ready(self) -> bool:
        if not self.web:
            return True
        found = WEB_UI_LINE.search(self.log.read_bytes())
        if found:
            self.web_url, self.web_token = found.group(1).decode(), found.group(2).decode()
        return bool(found)

    def state_file(self, suffix: str) -> Path:
        """Its routes.yaml's state file of this kind (".state.json", ".usage.jsonl")."""
        return config_state(self.config, suffix, self.env)

    def web_api(self, path: str) -> httpx.Response:
        """GET `path` from mitmweb's API with the token, as a script would."""
        assert self.web, "started without web=True"
        if self._web_client is None:
            self._web_client = httpx.Client(base_url=f"http://127.0.0.1:{self.web_port}", timeout=10,
                                            headers={"Authorization": f"Bearer {self.web_token}"})
        return self._web_client.get(path).raise_for_status()

    def stop(self) -> None:
        if self._web_client is not None:
            self._web_client.close()
            self._web_client = None
        if self.process:
            end_process(self.process, 5)
        self.check_log()

    def check_log(self) -> None:
        """mitmproxy logs an exception in an addon hook and carries on: a test whose
        gateway raised one fails, whatever the client saw."""
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        if "Addon error" in log:
            start = log.index("Addon error")
            raise AssertionError(f"the gateway's addons raised:\n{log[start:start + 3000]}")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=2).json()

    def credentials(self, **headers: str) -> dict:
        """The pools' state (GET /modelmux/credentials)."""
        response = httpx.get(f"{self.url}/modelmux/credentials", headers=headers, timeout=2)
        response.raise_for_status()
        return response.json()

    def reset_credentials(self, **headers: str) -> None:
        """Clear every cooldown, so one test's failures do not refuse the next one's requests."""
        httpx.post(f"{self.url}/modelmux/credentials/reset", json={}, headers=headers, timeout=2).raise_for_status()

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def all_running(*gateways: Gateway) -> Iterator[tuple[Gateway, ...]]:
    """Start `gateways` side by side (each takes a second or two to become healthy), and
    stop every one after."""
    try:
        with ThreadPoolExecutor(len(gateways)) as pool:
            for started in [pool.submit(gateway.start) for gateway in gateways]:
                started.result()
        yield gateways
    finally:
        for gateway in gateways:
            gateway.stop()
