"""Shared fixtures: a fake upstream and the real gateway in front of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# No test writes state (credential cooldowns, usage records, pid files) into the real
# home: what does not set its own state directory gets one for the whole run.
os.environ.setdefault("MODELMUX_STATE_DIR", tempfile.mkdtemp(prefix="modelmux-test-state-"))

from gateway import Gateway
from upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """`start_gateway(routes_yaml, env={...})` → a running gateway, stopped after the test."""
    started: list[Gateway] = []

    def start(routes: str, env: dict[str, str] | None = None, extra_args: list[str] | None = None) -> Gateway:
        directory = tmp_path / f"gateway{len(started)}"
        directory.mkdir()
        gateway = Gateway(directory, routes, env, extra_args)
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # gitignored; CI may upload it
_kept: list[Path] = []


@pytest.fixture
def artifact() -> Callable[[str], Path]:
    """`artifact(name)` → where to keep a file for people to look at after the run (a
    screenshot); the run's summary lists every one that was written."""

    def path(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        _kept.append(ARTIFACTS / name)
        return ARTIFACTS / name

    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    written = [path for path in dict.fromkeys(_kept) if path.is_file()]
    if written:
        terminalreporter.write_sep("-", "test artifacts")
        for path in written:
            terminalreporter.write_line(str(path))
