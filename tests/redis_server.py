"""A real `redis-server` (Debian's package; ./dev.sh installs it when missing) for tests,
on a free port with its own directory, that a test can kill and start again on the
same port with the same data (append-only file, fsynced on every write)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from gateway import end_process, free_port

SERVER = os.environ.get("MODELMUX_REDIS_SERVER") or shutil.which("redis-server")


def need_redis() -> str:
    """The redis-server binary, or the test is skipped saying how to get one."""
    if SERVER is None:
        pytest.skip("no redis-server: ./dev.sh installs Debian's package as root with apt-get; otherwise install "
                    "it (`sudo apt-get install redis-server`) or point MODELMUX_REDIS_SERVER at one")
    return SERVER


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.binary = need_redis()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start:\n{(self.directory / 'redis.log').read_text()}")

    def kill(self) -> None:
        """As a crash or an outage: SIGKILL, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process, 5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
