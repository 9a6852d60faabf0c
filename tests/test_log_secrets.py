"""No configured secret reaches a log line: the gateway's log, as mitmdump writes it,
holds a key a careless addon logged (and a traceback quoting it) only redacted."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import httpx

from gateway import Gateway
from modelmux.addons.log_secrets import SecretFilter
from modelmux.config.types import Credential
from upstream import Upstream

SCRIPT = Path(__file__).parent / "scripts" / "logs_a_key.py"
KEY = "k-logged-0123456789"  # the script's


def test_a_record_and_its_traceback_are_scrubbed():
    found = SecretFilter()
    found.secrets = [Credential("main", KEY)]
    try:
        raise ValueError(f"bad {KEY}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "using %s and %d", (KEY, 3), sys.exc_info())
    assert found.filter(record)
    assert record.getMessage().startswith("using main…6789 and 3\nTraceback (most recent call last):")
    assert record.getMessage().endswith("ValueError: bad main…6789") and KEY not in record.getMessage()
    assert record.exc_info is None  # the traceback is in the message, as every formatter writes it
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "nothing %s", ("secret",), None)
    assert found.filter(plain) and plain.getMessage() == "nothing secret" and plain.args == ("secret",)


def test_the_gateways_log_holds_no_configured_key(tmp_path: Path):
    with Upstream() as upstream:
        routes = (f"providers:\n  zai: {{protocol: anthropic, base_url: '{upstream.url}', credentials: [{{label: main, key: {KEY}}}]}}\n"
                  "routes:\n  - {match: 'glm-*', provider: zai}\ndefault: null\n")
        with Gateway(tmp_path, routes, extra_args=["-s", str(SCRIPT)]) as gateway:
            body = {"model": "glm-4.6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            assert httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10).status_code == 200
            log = gateway.log.read_text()
    assert "sending with main…6789" in log and "ValueError: bad key main…6789" in log, log
    assert KEY not in log
