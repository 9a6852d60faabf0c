"""Hot reload: edits take effect while running; an invalid edit keeps the last good config."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from upstream import Upstream

ROUTES = """
providers:
  a: {{protocol: anthropic, base_url: "{a}", auth: passthrough}}
  b: {{protocol: anthropic, base_url: "{b}", auth: passthrough}}
routes:
  - {{match: "m-*", provider: {target}}}
default: null
"""


def rewrite(path, text: str) -> None:
    """Replace the file the way many editors save: write a new file, rename it over."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


def wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_edit_reloads_and_invalid_edit_keeps_last_good(start_gateway):
    with Upstream() as a, Upstream() as b:
        gateway = start_gateway(ROUTES.format(a=a.url, b=b.url, target="a"))

        def ask() -> int:
            return httpx.post(f"{gateway.url}/v1/messages", json={"model": "m-1"}).status_code

        assert ask() == 200 and len(a.received) == 1

        loaded_at = gateway.health()["config_loaded_at"]
        rewrite(gateway.config, ROUTES.format(a=a.url, b=b.url, target="b"))
        wait_for(lambda: gateway.health()["config_loaded_at"] != loaded_at)
        assert ask() == 200 and (len(a.received), len(b.received)) == (1, 1)
        assert gateway.health()["reload_error"] is None

        rewrite(gateway.config, ROUTES.format(a=a.url, b=b.url, target="c"))
        wait_for(lambda: gateway.health()["reload_error"] is not None)
        assert gateway.health()["reload_error"] == (
            f"{gateway.config}: routes[0].provider: 'c' is not a provider; known: a, b")
        assert ask() == 200 and len(b.received) == 2  # still the last good config
        assert "routes.yaml changed but is invalid; keeping the last good config" in gateway.log.read_text()

        rewrite(gateway.config, "providers: [oops")
        wait_for(lambda: "not valid YAML" in (gateway.health()["reload_error"] or ""))
        assert ask() == 200 and len(b.received) == 3

        rewrite(gateway.config, ROUTES.format(a=a.url, b=b.url, target="a"))
        wait_for(lambda: gateway.health()["reload_error"] is None)
        assert ask() == 200 and (len(a.received), len(b.received)) == (2, 3)


def test_invalid_config_at_start_refuses_to_start(tmp_path):
    import pytest

    from gateway import Gateway

    gateway = Gateway(tmp_path, "providers:\n  a: {protocol: anthropic, base_url: 'https://x', auth: nope}\n")
    with pytest.raises(RuntimeError, match="gateway exited") as raised:
        gateway.start()
    assert ("providers.a.auth: is not understood (its value is not shown: it may hold a key); write 'passthrough', "
            "'none' or 'Header-Name: value' containing {key}") in str(raised.value)


def test_redirect_upstreams_moves_every_provider_until_turned_off(tmp_path):
    from mitmproxy import exceptions
    from mitmproxy.test import taddons

    from modelmux.addons.settings import Settings

    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.format(a="https://a.example/v1", b="http://b.example:81", target="a"))
    settings = Settings()
    with taddons.context(settings) as context:
        context.configure(settings, modelmux_config=str(path), modelmux_redirect_upstreams="http://127.0.0.1:4000")
        assert [p.base_url for p in settings.config.providers.values()] == [
            "http://127.0.0.1:4000/v1", "http://127.0.0.1:4000"]
        with pytest.raises(exceptions.OptionsError, match="modelmux_redirect_upstreams: 'localhost' is not an origin"):
            context.configure(settings, modelmux_redirect_upstreams="localhost")
        assert settings.redirect == "http://127.0.0.1:4000"
        context.configure(settings, modelmux_redirect_upstreams="")
        assert [p.base_url for p in settings.config.providers.values()] == ["https://a.example/v1", "http://b.example:81"]


def test_a_key_typed_into_routes_yaml_stays_out_of_healthz_and_the_log(start_gateway):
    """A reload that fails on a value written in directly (not `${VAR}`): the error names
    the key and the problem; /healthz shows it only with the gateway key."""
    literal, gateway_key = "sk-literal-typed-in-9999", "mm-gateway-key-for-health-8888"
    keyed = "server: {{api_key: \"${{MM_KEY}}\"}}\n" + ROUTES
    with Upstream() as a, Upstream() as b:
        gateway = start_gateway(keyed.format(a=a.url, b=b.url, target="a"), {"MM_KEY": gateway_key})
        broken = keyed.format(a=a.url, b=b.url, target="a").replace("auth: passthrough}", (
            f"auth: 'Authorization: Bearer {literal}', credentials: [{{label: x, key: k}}]}}"), 1)
        rewrite(gateway.config, broken)

        def health() -> dict:
            return httpx.get(f"{gateway.url}/healthz", headers={"x-modelmux-key": gateway_key}).json()

        wait_for(lambda: health()["reload_error"] is not None)
        assert health()["reload_error"].startswith(f"{gateway.config}: providers.a.auth: is not understood")
        public = httpx.get(f"{gateway.url}/healthz").text
        assert "reload_error" not in public and str(gateway.config) not in public
        assert literal not in health()["reload_error"] and literal not in gateway.log.read_text()
