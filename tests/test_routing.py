"""Routing decisions: first match wins, aliases, profiles, and the /v1/models catalogue."""

from pathlib import Path

import pytest
import yaml

from modelmux import routing
from modelmux.config import loader
from modelmux.errors import GatewayError

ROUTES = """
providers:
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough}
  zai: {protocol: anthropic, base_url: "https://z", credentials: [{label: a, key: k}], models: [glm-4.6, glm-4.5-air]}
  kimi: {protocol: anthropic, base_url: "https://k", credentials: [{label: a, key: k}]}
routes:
  - {match: claude-opus-4-1, provider: kimi, model: kimi-k2}
  - {match: "claude-*haiku*", provider: zai, model: glm-4.5-air}
  - {match: "claude-*", provider: anthropic}
  - {match: {regex: "^kimi-k2(-turbo)?$"}, provider: kimi}
  - {match: {glob: "glm-[45].6"}, provider: kimi, response_model: upstream}
aliases: {opus: claude-opus-4-1, fast: haiku, haiku: claude-3-5-haiku-latest}
profiles:
  claude: {slots: {opus: claude-opus-4-1, sonnet: claude-sonnet-4-5}, providers: [anthropic]}
  mixed: {slots: {opus: claude-opus-4-1, haiku: claude-haiku-4-5}, providers: [kimi, zai]}
"""
CONFIG = loader.parse(yaml.safe_load(ROUTES), Path("/x/routes.yaml"), {})


@pytest.mark.parametrize(
    "model, provider, upstream, source",
    [
        ("claude-opus-4-1", "kimi", "kimi-k2", "routes[0]"),  # exact, ahead of the glob below
        ("claude-haiku-4-5", "zai", "glm-4.5-air", "routes[1]"),  # glob
        ("claude-3-5-haiku-latest", "zai", "glm-4.5-air", "routes[1]"),
        ("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", "routes[2]"),  # model kept
        ("kimi-k2-turbo", "kimi", "kimi-k2-turbo", "routes[3]"),  # regex
        ("glm-4.6", "kimi", "glm-4.6", "routes[4]"),  # explicit glob beats the provider's model list
        ("glm-4.5-air", "zai", "glm-4.5-air", "providers.zai.models"),  # provider model list
        ("opus", "kimi", "kimi-k2", "routes[0]"),  # alias
        ("fast", "zai", "glm-4.5-air", "routes[1]"),  # alias chain
    ],
)
def test_first_match_wins(model: str, provider: str, upstream: str, source: str):
    decision = routing.route(CONFIG, model)
    assert (decision.provider.name, decision.upstream_model, decision.route.source) == (provider, upstream, source)
    assert decision.requested == model


@pytest.mark.parametrize("model", ["my-claude-haiku-4-5", "xglm-4.6", "glm-4.6-air"])
def test_a_glob_matches_the_whole_name_only(model: str):
    """`claude-*haiku*` is a shell glob: a name that merely contains such a piece is
    not one of its models (fnmatch's regex would be found inside it by a search)."""
    with pytest.raises(GatewayError):
        routing.route(CONFIG, model)


def test_model_restored_unless_route_says_upstream():
    assert routing.route(CONFIG, "opus").restores_model
    assert not routing.route(CONFIG, "claude-sonnet-4-5").restores_model
    assert not routing.route(CONFIG, "glm-4.6").restores_model  # response_model: upstream, and same name


def test_no_route_and_no_default_is_404_listing_models():
    with pytest.raises(GatewayError) as raised:
        routing.route(CONFIG, "gpt-5")
    assert raised.value.status == 404
    assert raised.value.error_type == "not_found_error"
    assert raised.value.message == (
        "model 'gpt-5' matches no route in routes.yaml and there is no default; models that exist: "
        "opus, fast, haiku, claude-opus-4-1, glm-4.6, glm-4.5-air, claude-sonnet-4-5, claude-haiku-4-5, "
        "zai,glm-4.6, zai,glm-4.5-air; routes match claude-*haiku*, claude-*, regex ^kimi-k2(-turbo)?$, glm-[45].6"
    )


def test_a_profiles_404_names_only_the_routes_it_may_take():
    with pytest.raises(GatewayError) as raised:
        routing.route(CONFIG, "gpt-5", CONFIG.profiles["claude"])
    assert raised.value.message.endswith("; routes match claude-*")  # claude-*haiku* goes to zai


def test_profile_refuses_other_providers():
    with pytest.raises(GatewayError) as raised:
        routing.route(CONFIG, "claude-haiku-4-5", CONFIG.profiles["claude"])
    assert (raised.value.status, raised.value.error_type) == (403, "permission_error")
    assert raised.value.message == (
        "profile 'claude' may only use providers anthropic, but model 'claude-haiku-4-5' routes to 'zai' "
        "(routes[1]); add it to profiles.claude.providers or pick another model"
    )
    assert routing.route(CONFIG, "claude-sonnet-4-5", CONFIG.profiles["claude"]).provider.name == "anthropic"


def test_catalog_lists_routable_names_with_targets():
    page = routing.catalog(CONFIG, None, limit=3)
    assert page == {
        "data": [
            {"type": "model", "id": "opus", "display_name": "opus → kimi/kimi-k2", "created_at": "2025-01-01T00:00:00Z"},
            {"type": "model", "id": "fast", "display_name": "fast → zai/glm-4.5-air", "created_at": "2025-01-01T00:00:00Z"},
            {"type": "model", "id": "haiku", "display_name": "haiku → zai/glm-4.5-air", "created_at": "2025-01-01T00:00:00Z"},
        ],
        "has_more": True,
        "first_id": "opus",
        "last_id": "haiku",
    }
    rest = routing.catalog(CONFIG, None, limit=100, after_id="haiku")
    assert [m["id"] for m in rest["data"]] == [
        "claude-opus-4-1", "glm-4.6", "glm-4.5-air", "claude-sonnet-4-5", "claude-haiku-4-5", "zai,glm-4.6",
        "zai,glm-4.5-air"]
    assert rest["has_more"] is False
    before = routing.catalog(CONFIG, None, limit=2, before_id="glm-4.5-air")
    assert ([m["id"] for m in before["data"]], before["has_more"]) == (["claude-opus-4-1", "glm-4.6"], True)


def test_catalog_for_a_profile_lists_only_what_it_may_reach():
    names = [m["id"] for m in routing.catalog(CONFIG, CONFIG.profiles["claude"], limit=100)["data"]]
    assert names == ["claude-sonnet-4-5"]
