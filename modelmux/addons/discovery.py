"""Discovery: what each provider's own model list reports of its models (context
window, output limit, capabilities), asked in the background after routes.yaml loads
and after every reload.

No request waits for it: until a list answers, the facts are the cache file's (what
the last gateway or `modelmux check` found), and a list that never answers leaves
routes.yaml's facts alone. A failure is logged once per provider until its list
answers again; it is never fatal. The cache file (model_facts.discovered_path) is what
the launcher reads; it holds facts only, never a key or a URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

import httpx
from mitmproxy import ctx
from mitmproxy.utils import asyncio_utils

from modelmux.addons.settings import Settings
from modelmux.config import model_facts
from modelmux.config.types import Config, Credential, ModelFacts, Provider
from modelmux.routing import Decision
from modelmux.translate import model_lists

logger = logging.getLogger(__name__)

# A model list is one small GET; an upstream that has not answered it by then is
# down or elsewhere, and its facts can wait for the next reload.
LIST_TIMEOUT = 30.0


class Discovery:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.discovered: dict[str, dict[str, ModelFacts]] = {}  # provider -> upstream model -> facts
        self.path: Path | None = None  # the cache file, once routes.yaml is loaded
        self.enabled = True
        self._config: Config | None = None
        self._running = False
        self._task: asyncio.Task | None = None
        self._said: set[str] = set()  # providers whose failing list has been logged
        self._writing = asyncio.Lock()
        self._write_failed = False  # the cache file's last write failed, and that was logged
        settings.subscribe(self._configure)

    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_model_lists", bool, True,
            "Ask each provider's model list, after routes.yaml loads and after every reload, what it reports "
            "of its models (context window, output limit, capabilities); false: only routes.yaml's facts count.",
        )

    def configure(self, updated: set[str]) -> None:
        if "modelmux_model_lists" in updated:
            self.enabled = ctx.options.modelmux_model_lists
            self._start()

    def running(self) -> None:
        self._running = True
        self._start()

    def done(self) -> None:
        if self._task:
            self._task.cancel()

    def facts(self, decision: Decision) -> ModelFacts:
        """What is known of `decision`'s upstream model: routes.yaml's facts, then its list's
        (none when the lists are not asked)."""
        discovered = self.discovered if self.enabled else None
        return model_facts.facts_for(decision.provider, decision.upstream_model, discovered)

    def _configure(self, config: Config) -> None:
        path = model_facts.discovered_path(config.path)
        if path != self.path:
            self.path = path
            self.discovered = model_facts.load_discovered(path)
        self._config = config
        self._start()

    def _start(self) -> None:
        """Ask every list again (a reload may have changed any provider), dropping an
        asking still under way for an older config. Not in a replay, whose upstreams are
        the replay server, which has no lists."""
        if not (self._running and self.enabled and self._config is not None) or self.settings.redirect:
            return
        if self._task:
            self._task.cancel()
        self._task = asyncio_utils.create_task(self._ask_all(self._config), name="modelmux model lists", keep_ref=True)

    async def _ask_all(self, config: Config) -> None:
        """Each list at once; what one reports is kept (and written) as it comes, so a
        list that hangs holds up no other."""
        await self._keep(model_facts.updated(self.discovered, {}, config.providers))  # removed providers go
        # trust_env off, as the relay's client: both send paths reach upstreams alike.
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
            await asyncio.gather(*(self._ask(client, config, p, c) for p, c in model_lists.askable(config)))

    async def _keep(self, discovered: dict[str, dict[str, ModelFacts]]) -> None:
        """Hold `discovered`, and write it to the cache file when it changed (most lists
        name their models and say nothing more: nothing to write)."""
        changed, self.discovered = discovered != self.discovered, discovered
        if not changed or self.path is None:
            return
        # One write at a time, each of the facts as they are when it starts: a slower
        # write of fewer facts never lands after a later one. In a thread: its fsync must
        # not stall the flows.
        async with self._writing:
            try:
                await asyncio.to_thread(model_facts.save_discovered, self.path, dict(self.discovered))
            except OSError as e:
                if not self._write_failed:
                    logger.warning("cannot write the model facts file %s (%s); the launcher will not see what "
                                   "the model lists reported", self.path, e.strerror)
                self._write_failed = True
            else:
                self._write_failed = False

    async def _ask(self, client: httpx.AsyncClient, config: Config, provider: Provider,
                   credential: Credential | None) -> None:
        url, headers = model_lists.request(provider, credential)
        timeout = httpx.Timeout(LIST_TIMEOUT, connect=provider.connect_timeout)
        try:
            response = await client.get(url, headers=headers, timeout=timeout)
        except httpx.HTTPError as e:
            # The type only: an error's text may quote the URL, whose query may hold a key.
            return self._failed(provider, f"no answer ({type(e).__name__})")
        if response.status_code >= 300:
            return self._failed(provider, f"HTTP {response.status_code}")
        found = model_lists.facts(response.text)
        if found is None:
            return self._failed(provider, "an answer that is not a model list")
        if provider.name in self._said:
            self._said.discard(provider.name)
            logger.info("the model list of provider '%s' answers again", provider.name)
        logger.debug("the model list of provider '%s' reports facts of %d models", provider.name, len(found))
        await self._keep(model_facts.updated(self.discovered, {provider.name: found}, config.providers))

    def _failed(self, provider: Provider, why: str) -> None:
        if provider.name not in self._said:
            self._said.add(provider.name)
            logger.warning("asked provider '%s' for its model list and got %s; its models' facts are routes.yaml's "
                           "(and what an earlier answer reported) until it answers", provider.name, why)
