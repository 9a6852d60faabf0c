"""Shared fixtures: a fake upstream and the real gateway in front of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
