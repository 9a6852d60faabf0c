"""LogSecrets: no configured secret reaches a log line, whoever logged it.

Each place modelmux logs what an upstream said scrubs it first (the Failover, the
Dashboard's summary lines); this is the net under them, and under any addon or
library that logs a key by mistake. A filter on every handler of the root logger (those
mitmproxy installs: mitmdump's terminal log, mitmweb's event log) replaces each
configured secret in a record's message, and in the traceback it carries, by its
redacted form (label and last four characters) before the handler writes it.
"""

from __future__ import annotations

import logging

from modelmux.addons.settings import Settings
from modelmux.config.types import Config, Credential
from modelmux.secrets import configured, longest_first, scrub


class SecretFilter(logging.Filter):
    """Scrubs `secrets` from a record's message and traceback; lets every record through."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[Credential] = []
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if (clean := scrub(message, self.secrets)) != message:
            record.msg, record.args = clean, ()
        if record.exc_info:
            # mitmproxy's formatter writes the traceback from exc_info itself (exc_text
            # unread): one that quotes a secret becomes part of the message, scrubbed.
            traceback = record.exc_text or self._formatter.formatException(record.exc_info)
            if (scrubbed := scrub(traceback, self.secrets)) != traceback:
                record.msg, record.args = f"{record.getMessage()}\n{scrubbed}", ()
                record.exc_info, record.exc_text = None, None
        return True


class LogSecrets:
    def __init__(self, settings: Settings) -> None:
        self.filter = SecretFilter()
        self._handlers: list[logging.Handler] = []
        settings.subscribe(self._configure)

    def _configure(self, config: Config) -> None:
        self.filter.secrets = longest_first(configured(config))

    def load(self, loader) -> None:
        self._install()

    def running(self) -> None:
        self._install()  # and on any handler added since

    def _install(self) -> None:
        for handler in logging.getLogger().handlers:
            if handler not in self._handlers:
                handler.addFilter(self.filter)
                self._handlers.append(handler)

    def done(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self.filter)
        self._handlers.clear()
