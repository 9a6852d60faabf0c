"""Shared by the credential pool tests: a fake clock, configs and pick helpers."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from modelmux.config import loader
from modelmux.credentials.pools import Lease, Pools, Verdict

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z


class Clock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def load(text: str) -> loader.Config:
    return loader.parse(yaml.safe_load(text), Path("/x/routes.yaml"), {})


def provider(name: str, *credentials: str, secret: str = "secret", **settings: object) -> str:
    """A routes.yaml provider block. Each credential is 'label' or 'label: more: fields';
    its key is key-PROVIDER-LABEL-SECRET."""
    items = ", ".join(
        f"{{label: {c.split(':')[0]}, key: key-{name}-{c.split(':')[0]}-{secret}{', ' + c.split(':', 1)[1] if ':' in c else ''}}}"
        for c in credentials
    )
    extra = "".join(f"\n    {k}: {json.dumps(v)}" for k, v in settings.items())
    return f"  {name}:\n    protocol: anthropic\n    base_url: https://{name}\n    credentials: [{items}]{extra}\n"


def pools_of(*providers: str) -> tuple[Pools, Clock]:
    clock = Clock()
    return Pools(load("providers:\n" + "".join(providers)), clock), clock


def labels(pools: Pools, name: str, n: int, model: str = "m", session: str | None = None) -> list[str]:
    """`n` picks, each answered 200 at once."""
    picked = []
    for _ in range(n):
        lease = pools.pick(name, model, session)
        assert isinstance(lease, Lease), lease
        picked.append(lease.credential.label)
        pools.record(lease, 200)
    return picked


def fail(pools: Pools, name: str, label: str, outcome, model: str = "m", **kwargs) -> Verdict:
    """Pick until `label` comes up, answer it `outcome`, release the others unrecorded."""
    others = []
    try:
        for _ in range(20):
            lease = pools.pick(name, model)
            assert isinstance(lease, Lease), lease
            if lease.credential.label == label:
                return pools.record(lease, outcome, **kwargs)
            others.append(lease)
        raise AssertionError(f"{label} never picked")
    finally:
        for other in others:
            other.release()


def ladder(pools: Pools, clock: Clock, outcome, steps: int) -> list[float]:
    """Cooldown lengths of credential 'a' of provider 'p', failing each time it recovers."""
    lengths = []
    for _ in range(steps):
        verdict = fail(pools, "p", "a", outcome)
        lengths.append(verdict.cooldown.until - clock())
        clock.advance(verdict.cooldown.until - clock())
    return lengths
