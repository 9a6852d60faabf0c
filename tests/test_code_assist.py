"""A Google login's project, found through Code Assist's loadCodeAssist and onboardUser
(modelmux.oauth.code_assist): the bodies as plain data, then discovery against a fake
Code Assist (tests/code_assist_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from code_assist_server import OPERATION, CodeAssist, google_error, not_set_up, setup_done
from upstream import Upstream

from modelmux.oauth import code_assist
from modelmux.oauth.code_assist import ProjectError
from modelmux.oauth.kinds import KINDS
from modelmux.oauth.tokens import Token

GEMINI = KINDS["gemini-cli"]
ACCESS = "ya29.secret-access-token"
UNSPECIFIED = {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}


def test_load_asks_with_gemini_clis_metadata_and_the_chosen_project() -> None:
    assert code_assist.load_body(GEMINI, None) == {"metadata": UNSPECIFIED}
    assert code_assist.load_body(GEMINI, "mine") == {"cloudaicompanionProject": "mine",
                                                     "metadata": {**UNSPECIFIED, "duetProject": "mine"}}  # fmt: skip
    assert code_assist.load_body(KINDS["antigravity"], None)["metadata"]["ideType"] == "ANTIGRAVITY"


def test_onboarding_names_a_project_except_on_the_free_tier() -> None:
    assert code_assist.onboard_body(GEMINI, "free-tier", "mine") == {"tierId": "free-tier", "metadata": UNSPECIFIED}
    assert code_assist.onboard_body(GEMINI, "standard-tier", "mine") == {
        "tierId": "standard-tier", "cloudaicompanionProject": "mine",
        "metadata": {**UNSPECIFIED, "duetProject": "mine"}}  # fmt: skip
    assert code_assist.onboard_tier(not_set_up("free-tier"))["id"] == "free-tier"
    assert code_assist.onboard_tier({"allowedTiers": [{"id": "free-tier"}]})["id"] == "legacy-tier"


def test_the_project_is_read_from_either_form_and_an_unfinished_operation_has_none() -> None:
    assert code_assist.loaded_project(setup_done("p"), None) == "p"
    assert code_assist.loaded_project(setup_done({"id": "p", "name": "n"}), None) == "p"
    assert code_assist.loaded_project(setup_done(None), "env") == "env"
    assert code_assist.loaded_project(not_set_up(), None) is None
    assert code_assist.onboarded_project({"done": False}) is None
    assert code_assist.onboarded_project({"done": True, "response": {"cloudaicompanionProject": {"id": "p"}}}) == "p"
    assert code_assist.environment_project({"GOOGLE_CLOUD_PROJECT_ID": "b"}) == "b"
    assert code_assist.environment_project({"GOOGLE_CLOUD_PROJECT": "a", "GOOGLE_CLOUD_PROJECT_ID": "b"}) == "a"
    assert code_assist.environment_project({"GOOGLE_CLOUD_PROJECT": ""}) is None


@pytest.fixture
def server() -> Iterator[Upstream]:
    with Upstream() as upstream:
        yield upstream


class Clock:
    """time.monotonic and time.sleep for a poll that takes no time."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def discover(server: Upstream, fake: CodeAssist, environ: dict[str, str] | None = None, kind: str = "gemini-cli",
             clock: Clock | None = None, **limits: Any) -> str:  # fmt: skip
    server.reply = fake
    clock = clock or Clock()
    token = Token(kind=kind, access_token=ACCESS, base_url=server.url)
    with httpx.Client() as client:
        return code_assist.discover_project(client, KINDS[kind], token, environ or {}, sleep=clock.sleep, clock=clock,
                                            **limits)  # fmt: skip


def test_a_set_up_account_gives_its_project_in_one_call(server: Upstream) -> None:
    fake = CodeAssist(setup_done("proj-1"))
    assert discover(server, fake) == "proj-1"
    (load,) = server.received
    assert (load.method, load.path) == ("POST", "/v1internal:loadCodeAssist")
    assert load.headers["authorization"] == f"Bearer {ACCESS}" and load.json() == {"metadata": UNSPECIFIED}


def test_a_new_account_is_onboarded_and_its_operation_polled(server: Upstream) -> None:
    clock = Clock()
    fake = CodeAssist(not_set_up("free-tier"), project="proj-free", polls=2)
    assert discover(server, fake, {"GOOGLE_CLOUD_PROJECT": "ignored-on-free"}, clock=clock) == "proj-free"
    assert fake.calls == ["loadCodeAssist", "onboardUser", OPERATION, OPERATION]
    assert server.received[1].json() == {"tierId": "free-tier", "metadata": UNSPECIFIED}
    assert clock.slept == [5.0, 5.0]


def test_an_operation_without_a_name_is_polled_by_asking_again(server: Upstream) -> None:
    fake = CodeAssist(not_set_up("free-tier"), project="proj-free", polls=2, named=False)
    assert discover(server, fake, kind="antigravity") == "proj-free"
    assert fake.calls == ["loadCodeAssist", "onboardUser", "onboardUser", "onboardUser"]
    assert server.received[0].json()["metadata"]["ideType"] == "ANTIGRAVITY"


def test_the_environments_project_is_asked_for_and_used(server: Upstream) -> None:
    fake = CodeAssist(setup_done(None))
    assert discover(server, fake, {"GOOGLE_CLOUD_PROJECT": "my-proj"}) == "my-proj"
    assert server.received[0].json() == {"cloudaicompanionProject": "my-proj",
                                         "metadata": {**UNSPECIFIED, "duetProject": "my-proj"}}  # fmt: skip
    fake = CodeAssist(not_set_up("standard-tier", user_project=True), project="my-proj")
    assert discover(server, fake, {"GOOGLE_CLOUD_PROJECT": "my-proj"}) == "my-proj"
    assert server.received[-1].json()["cloudaicompanionProject"] == "my-proj"


def test_a_tier_that_needs_a_project_of_the_users_says_to_set_one(server: Upstream) -> None:
    fake = CodeAssist(not_set_up("standard-tier", user_project=True))
    with pytest.raises(ProjectError, match="set GOOGLE_CLOUD_PROJECT=YOUR-PROJECT and log in again"):
        discover(server, fake)
    assert fake.calls == ["loadCodeAssist"]  # nothing onboarded
    reasons = not_set_up("standard-tier", user_project=True,
                         ineligibleTiers=[{"reasonCode": "INELIGIBLE_ACCOUNT", "reasonMessage": "Not in your region"}])
    with pytest.raises(ProjectError, match="^Not in your region; this Google account needs"):
        discover(server, CodeAssist(reasons))


def test_an_account_to_verify_gets_the_link(server: Upstream) -> None:
    loaded = not_set_up(ineligibleTiers=[{"reasonCode": "VALIDATION_REQUIRED", "reasonMessage": "Verify your age",
                                          "validationUrl": "https://accounts.google.com/verify"}])  # fmt: skip
    with pytest.raises(ProjectError, match=r"verify this account first \(Verify your age\): open https://acc"):
        discover(server, CodeAssist(loaded))


def test_an_onboarding_that_does_not_finish_is_given_up(server: Upstream) -> None:
    clock = Clock()
    with pytest.raises(ProjectError, match="still setting up Code Assist .* after 20 s"):
        discover(server, CodeAssist(not_set_up(), polls=100), clock=clock, timeout=20)
    assert clock.slept == [5.0] * 4


def test_errors_name_the_method_and_googles_message_never_the_token(server: Upstream) -> None:
    server.reply = lambda _: google_error(403, "The caller does not have permission")
    token = Token(kind="gemini-cli", access_token=ACCESS, base_url=server.url)
    with httpx.Client() as client, pytest.raises(ProjectError) as caught:
        code_assist.discover_project(client, GEMINI, token, {})
    assert str(caught.value) == "Code Assist's loadCodeAssist answered 403: The caller does not have permission"
    closed = Token(kind="gemini-cli", access_token=ACCESS, base_url="http://127.0.0.1:9")
    with httpx.Client() as client, pytest.raises(ProjectError, match="cannot reach Code Assist at http://127.0.0.1:9"):
        code_assist.discover_project(client, GEMINI, closed, {})
