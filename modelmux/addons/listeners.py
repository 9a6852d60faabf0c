"""Listeners: loopback by default, plus one reverse listener per profile with a port."""

from __future__ import annotations

import logging

from mitmproxy import ctx
from mitmproxy.proxy import mode_specs

from modelmux.addons.settings import Settings
from modelmux.config.types import Config

logger = logging.getLogger(__name__)

FALLBACK_TARGET = "https://api.anthropic.com"


class Listeners:
    """Requests on a profile's port belong to that profile, so each such profile gets
    its own listener in this same process; a reload adds and removes them. Upstream
    connections are opened only for a request that needs one (lazy)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ours: set[str] = set()

    def configure(self, updated: set[str]) -> None:
        # Every request is routed by modelmux: the reverse target is only where a
        # passthrough default goes. mitmproxy's default strategy (eager) dials it as soon
        # as a client connects, before a request is read, so with it unreachable
        # (offline, firewalled) every client got an empty reply, /healthz and requests
        # for local providers included (reference/mitmproxy.md §1.4).
        if "connection_strategy" in updated and ctx.options.connection_strategy != "lazy":
            ctx.options.update(connection_strategy="lazy")

    def running(self) -> None:
        # Not earlier: mitmproxy applies mode changes only once its proxy server runs.
        self.settings.subscribe(self._sync)

    def _sync(self, config: Config) -> None:
        modes = [self._pinned(m, config.server.host) for m in ctx.options.mode]
        parsed = [mode_specs.ProxyMode.parse(m) for m in modes]
        user_ports = {p.listen_port(ctx.options.listen_port) for m, p in zip(modes, parsed) if m not in self._ours}
        target = next((p.data for p in parsed if isinstance(p, mode_specs.ReverseMode)), FALLBACK_TARGET)
        wanted = {
            f"reverse:{target}@{config.server.host}:{profile.port}"
            for profile in config.profiles.values()
            if profile.port is not None and profile.port not in user_ports
        }
        kept = [m for m in modes if m not in self._ours or m in wanted]
        new = kept + sorted(wanted - set(kept))
        self._ours = wanted
        if new != list(ctx.options.mode):
            logger.info("listeners: %s", ", ".join(new))
            ctx.options.update(mode=new)

    @staticmethod
    def _pinned(spec: str, host: str) -> str:
        """A listener spec without a host binds every interface (mitmproxy's default);
        a gateway holding API keys binds routes.yaml's server.host instead."""
        mode = mode_specs.ProxyMode.parse(spec)
        if mode.custom_listen_host is not None or ctx.options.listen_host:
            return spec
        head = spec.rpartition("@")[0] if mode.custom_listen_port is not None else spec
        return f"{head}@{host}:{mode.listen_port(ctx.options.listen_port)}"
