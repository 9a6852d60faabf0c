"""The Recorder: a scrubbed copy of every finished flow, with what a replay needs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy import io
from mitmproxy.test import taddons, tflow, tutils

from modelmux.addons.recorder import Recorder
from modelmux.addons.settings import Settings
from modelmux.replay.recordings import RECORD_VERSION

VENDOR_KEY = "vendor-key-eeeeeeeeeeee5555"  # no known key shape: found by value only
GATEWAY_KEY = "gateway-key-ffffffffffff6666"
CLIENT_TOKEN = "client-token-gggggggggggg7777"
STRANGER_KEY = "sk-ant-api03-someone-elses-key-8888"  # configured nowhere: found by its shape
ROUTES = """# the gateway's routes
server: {api_key: "${GATEWAY_KEY}"}
providers:
  vendor:
    protocol: anthropic
    base_url: http://127.0.0.1:9/api
    credentials: [{label: vendor-main, key: "${VENDOR_KEY}"}]
default: {provider: vendor}
"""


@contextmanager
def recorder_in_process(tmp_path: Path, record: Path | None) -> Iterator[tuple[Recorder, taddons.context]]:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    settings = Settings()
    recorder = Recorder(settings)
    with pytest.MonkeyPatch.context() as env, taddons.context(settings, recorder) as context:
        env.setenv("VENDOR_KEY", VENDOR_KEY)
        env.setenv("GATEWAY_KEY", GATEWAY_KEY)
        context.configure(settings, modelmux_config=str(routes))
        context.configure(recorder, modelmux_record=str(record) if record else "")
        yield recorder, context


def finished_flow(path: bytes = b"/v1/messages", summary: bool = True):
    """A flow as the Dashboard leaves it, with every secret a flow can carry."""
    flow = tflow.tflow(req=tutils.treq(
        method=b"POST", path=path, content=json.dumps({"model": "glm", "note": STRANGER_KEY}).encode(),
        headers=((b"x-api-key", VENDOR_KEY.encode()), (b"content-type", b"application/json")),
    ), resp=tutils.tresp(content=f'{{"echo": "bad key {VENDOR_KEY}"}}'.encode()))  # fmt: skip
    flow.metadata["modelmux"] = {
        "client_request": {"method": "POST", "path": f"/v1/messages?key={CLIENT_TOKEN}",
                           "headers": [["authorization", f"Bearer {CLIENT_TOKEN}"], ["x-modelmux-key", GATEWAY_KEY]],
                           "body": None},
        "attempts": [{"provider": "vendor", "status": 401, "response_headers": [["x-api-key", "anything"]],
                      "response_body": f"{CLIENT_TOKEN} rejected".encode()}],
    }  # fmt: skip
    if summary:
        flow.metadata["modelmux"]["summary"] = {"kind": "routed", "status": 200}
    flow.comment = f"vendor · {VENDOR_KEY}"
    return flow


def recorded(record: Path) -> list:
    with record.open("rb") as file:
        return list(io.FlowReader(file).stream())


def test_a_finished_flow_is_recorded_without_any_secret(tmp_path: Path) -> None:
    record = tmp_path / "session" / "rec.mitm"  # its folder is made
    with recorder_in_process(tmp_path, record) as (recorder, context):
        flow = finished_flow()
        vendor_auth = flow.request.headers["x-api-key"]
        flow.request.headers["x-api-key"] = CLIENT_TOKEN
        recorder.requestheaders(flow)  # the client's token, seen before the Router swaps it
        flow.request.headers["x-api-key"] = vendor_auth
        recorder.response(flow)
        assert record.stat().st_size > 0  # flushed at once, not at exit
    text = record.read_bytes()
    for secret in (VENDOR_KEY, GATEWAY_KEY, CLIENT_TOKEN, STRANGER_KEY):
        assert secret.encode() not in text
    (saved,) = recorded(record)
    assert saved.request.headers["x-api-key"] == "vendor-main…5555"
    assert json.loads(saved.request.content) == {"model": "glm", "note": "sk-ant-REDACTED"}
    assert saved.response.content == b'{"echo": "bad key vendor-main\xe2\x80\xa65555"}'
    notes = saved.metadata["modelmux"]
    assert notes["client_request"]["path"] == "/v1/messages?key=REDACTED"
    assert notes["client_request"]["headers"] == [["authorization", "Bearer client…7777"],
                                                  ["x-modelmux-key", "modelmux-key…6666"]]
    assert notes["attempts"][0]["response_headers"] == [["x-api-key", "REDACTED"]]
    assert notes["attempts"][0]["response_body"] == "client…7777 rejected".encode()
    assert notes["record"] == {"version": RECORD_VERSION, "routes": ROUTES}
    assert saved.comment == "vendor · vendor-main…5555"
    # the live flow keeps its bytes for mitmweb and the other addons
    assert flow.request.headers["x-api-key"] == VENDOR_KEY


def test_a_literal_key_in_routes_yaml_is_scrubbed_from_the_record(tmp_path: Path) -> None:
    record = tmp_path / "rec.mitm"
    with recorder_in_process(tmp_path, record) as (recorder, context):
        recorder.settings.config.path.write_text(ROUTES.replace("${VENDOR_KEY}", VENDOR_KEY))
        recorder.settings.configure({"modelmux_config"})
        recorder.response(finished_flow())
    (saved,) = recorded(record)
    assert VENDOR_KEY not in saved.metadata["modelmux"]["record"]["routes"]
    assert "key: \"vendor-main…5555\"" in saved.metadata["modelmux"]["record"]["routes"]


def test_only_the_gateways_own_flows_of_a_session_are_recorded(tmp_path: Path) -> None:
    record = tmp_path / "rec.mitm"
    with recorder_in_process(tmp_path, record) as (recorder, context):
        recorder.response(finished_flow(summary=False))  # not handled by modelmux
        recorder.response(finished_flow(b"/healthz"))  # health checks are no part of a session
        recorder.response(finished_flow(b"/modelmux/credentials"))
        errored = finished_flow(b"/v1/models")
        errored.response, errored.error = None, tflow.terr("Client disconnected.")
        recorder.error(errored)
    assert [f.request.path for f in recorded(record)] == ["/v1/models"]


def test_an_edited_flows_unscrubbed_original_is_not_recorded(tmp_path: Path) -> None:
    record = tmp_path / "rec.mitm"
    with recorder_in_process(tmp_path, record) as (recorder, context):
        flow = finished_flow()
        flow.backup()  # as mitmweb does before an edit
        flow.request.headers["x-api-key"] = "edited"
        recorder.response(flow)
    assert VENDOR_KEY.encode() not in record.read_bytes()


def test_recording_is_off_by_default_and_an_unwritable_path_is_refused(tmp_path: Path) -> None:
    with recorder_in_process(tmp_path, None) as (recorder, context):
        recorder.response(finished_flow())
        assert not list(tmp_path.glob("*.mitm"))
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        with pytest.raises(exceptions.OptionsError, match=f"modelmux_record: cannot write {blocker}/rec.mitm"):
            context.configure(recorder, modelmux_record=str(blocker / "rec.mitm"))


def test_serve_record_starts_the_gateway_recording(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES.replace('server: {api_key: "${GATEWAY_KEY}"}', "server: {port: 7999}"))
    fake = tmp_path / "fake-mitmdump"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "argv"}\n')
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "MODELMUX_MITMDUMP": str(fake), "VENDOR_KEY": VENDOR_KEY,
           "MODELMUX_STATE_DIR": str(tmp_path / "state")}  # fmt: skip
    command = [sys.executable, "-m", "modelmux.cli.main", "serve", "--config", str(routes), "--record", "out/rec.mitm"]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "modelmux: recording the session to out/rec.mitm" in result.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[-2:] == ["--set", f"modelmux_record={tmp_path / 'out' / 'rec.mitm'}"]
