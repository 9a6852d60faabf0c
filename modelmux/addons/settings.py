"""Settings: the routes.yaml in force, reloaded when the file changes."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path

from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from modelmux.config import loader as config
from modelmux.addons.notes import read_notes
from modelmux.config.types import ClientKey, Config, Profile
from modelmux.errors import GatewayError
from modelmux.headers import PROFILE_HEADER
from modelmux.replay import config_text

logger = logging.getLogger(__name__)

RELOAD_INTERVAL = 1.0  # seconds between checks of the file's mtime and size


class Settings:
    """Loads routes.yaml at start-up (invalid → refuse to start) and on every change
    while running (invalid → keep the last good config and say why)."""

    def __init__(self, default_config: Path | None = None) -> None:
        self.default_config = default_config
        self.config: Config | None = None
        self.loaded_at: float | None = None
        self.reload_error: str | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._watcher: asyncio.Task | None = None
        self._subscribers: list[Callable[[Config], None]] = []
        self.redirect: str | None = None  # origin every provider is sent to (replays)

    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_config",
            str,
            str(self.default_config or "routes.yaml"),
            "Path of modelmux's routes.yaml (providers, routes, aliases, profiles).",
        )
        loader.add_option(
            "modelmux_redirect_upstreams",
            str,
            "",
            "Send every provider's requests to this origin (scheme://host:port), keeping each "
            "base_url's path: how `modelmux replay` puts a recorded session's upstreams on its "
            "replay server. Empty: the base_urls as written.",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & {"modelmux_config", "modelmux_redirect_upstreams"}:
            return
        text = ctx.options.modelmux_redirect_upstreams
        try:
            redirect = config_text.origin(text) if text else None
        except ValueError as e:
            raise exceptions.OptionsError(f"modelmux_redirect_upstreams: {e}") from e
        try:
            new = _loaded(ctx.options.modelmux_config, redirect)
        except config.ConfigError as e:
            raise exceptions.OptionsError(str(e)) from e
        self.redirect = redirect
        self._install(new)

    def running(self) -> None:
        # Everything loaded so far lives as long as the gateway: keeping it out of the
        # collector's scans shortens the rare full collections that stall all flows.
        gc.freeze()
        self._watcher = asyncio_utils.create_task(
            self._watch(), name="modelmux config watcher", keep_ref=True
        )

    def done(self) -> None:
        if self._watcher:
            self._watcher.cancel()

    def subscribe(self, callback: Callable[[Config], None]) -> None:
        """Call `callback(config)` now (if loaded) and after every successful reload."""
        self._subscribers.append(callback)
        if self.config:
            callback(self.config)

    def profile_of(self, flow: http.HTTPFlow) -> Profile | None:
        """The profile a request belongs to: by the port it arrived on, else by the
        x-modelmux-profile header the launcher makes Claude Code send, else the first of
        its client key's profiles when that key is limited to some (server.api_keys)."""
        assert self.config
        profile = self._named_profile(flow)
        key = self.client_key(flow)
        if key is None or key.profiles is None:
            return profile
        if profile is None:
            return self.config.profiles[key.profiles[0]]
        if profile.name not in key.profiles:
            raise GatewayError(
                403, f"the key '{key.label}' may use profiles {', '.join(key.profiles)} only "
                     f"(server.api_keys.{key.label}.profiles), and this request is profile '{profile.name}'"
            )
        return profile

    def _named_profile(self, flow: http.HTTPFlow) -> Profile | None:
        assert self.config
        port = flow.client_conn.sockname[1] if flow.client_conn.sockname else None
        for profile in self.config.profiles.values():
            if profile.port is not None and profile.port == port:
                return profile
        name = flow.request.headers.get(PROFILE_HEADER)
        if name is None:
            return None
        if name not in self.config.profiles:
            known = ", ".join(self.config.profiles) or "none"
            raise GatewayError(
                400, f"{PROFILE_HEADER}: '{name}' is not a profile in {self.config.path.name}; known: {known}"
            )
        return self.config.profiles[name]

    def client_key(self, flow: http.HTTPFlow) -> ClientKey | None:
        """The gateway key the request presented (InboundAuth noted its label); None when
        the gateway has none."""
        assert self.config
        label = read_notes(flow).get("client_key")
        return next((key for key in self.config.server.client_keys if key.label == label), None) if label else None

    def _install(self, new: Config) -> None:
        self.config = new
        self.loaded_at = time.time()
        self.reload_error = None
        self._stamp = _stamp(new.path)
        for callback in self._subscribers:
            callback(new)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            assert self.config
            stamp = _stamp(self.config.path)
            if stamp == self._stamp:
                continue
            self._stamp = stamp
            try:
                new = _loaded(self.config.path, self.redirect)
            except config.ConfigError as e:
                self.reload_error = str(e)
                logger.error("routes.yaml changed but is invalid; keeping the last good config:\n%s", e)
                continue
            self._install(new)
            logger.info(
                "reloaded %s: %d providers, %d routes, %d profiles",
                new.path, len(new.providers), len(new.routes), len(new.profiles),
            )


def _loaded(path: str | Path, redirect: str | None) -> Config:
    loaded = config.load(path)
    return config_text.redirected(loaded, redirect) if redirect else loaded


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Changes when the file is written in place or replaced (editors that save by rename)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
