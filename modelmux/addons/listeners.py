"""Listeners: loopback by default, plus one reverse listener per profile with a port."""

from __future__ import annotations

import logging

from mitmproxy import ctx
from mitmproxy.proxy import mode_specs

from modelmux.addons.settings import Settings
from modelmux.config import Config

logger = logging.getLogger(__name__)

FALLBACK_TARGET = "https://api.anthropic.com"


class Listeners:
    """Requests on a profile's port belong to that profile, so each such profile gets
    its own listener in this same process; a reload adds and removes them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ours: set[str] = set()

    def configure(self, updated: set[str]) -> None:
        # mitmproxy's default listen_host '' means every interface; a gateway holding
        # API keys binds routes.yaml's server.host (127.0.0.1) unless told otherwise.
        if "modelmux_config" in updated and ctx.options.listen_host == "" and self.settings.config:
            ctx.options.update(listen_host=self.settings.config.server.host)

    def running(self) -> None:
        self.settings.subscribe(self._sync)

    def _sync(self, config: Config) -> None:
        modes = list(ctx.options.mode)
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
        if new != modes:
            logger.info("listeners: %s", ", ".join(new))
            ctx.options.update(mode=new)
