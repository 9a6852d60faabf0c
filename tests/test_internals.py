"""internals.new_response: the Response mitmproxy's constructor makes, without its
debug-mode type checks (and the exception cycles they leave for the collector); the
quick type check: mitmproxy's answers, without the exceptions."""

from __future__ import annotations

import gc
import io
import typing

import pytest
from mitmproxy import http
from mitmproxy.utils import typecheck as typecheck_module

from modelmux.addons import internals


def original(module, name, value, typeinfo):
    """mitmproxy's own check, whatever is installed now."""
    saved = module.check_option_type
    module.check_option_type = internals._CHECK_OPTION_TYPE
    try:
        internals._CHECK_OPTION_TYPE(name, value, typeinfo)
    finally:
        module.check_option_type = saved


def test_new_response_is_the_constructors_response():
    assert internals._PLAIN_RESPONSE_DATA  # the touchpoint holds on this mitmproxy
    fields = ((b"content-type", b"application/json"), (b"content-length", b"2"))
    made = internals.new_response(429, b"Too Many Requests", http.Headers(fields), b"{}", 1700000000.5)
    built = http.Response(b"HTTP/1.1", 429, b"Too Many Requests", http.Headers(fields), b"{}", None,
                          1700000000.5, 1700000000.5)
    assert type(made) is http.Response and made.data == built.data
    assert made.get_state() == built.get_state()
    assert (made.status_code, made.text, made.trailers, made.stream) == (429, "{}", None, False)
    made.content = b'{"a": 1}'  # it behaves as one: the content setter keeps content-length
    assert made.headers["content-length"] == "8"


def test_new_response_leaves_the_collector_nothing():
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        for _ in range(50):
            internals.new_response(200, b"OK", http.Headers([]), b"", 0.0)
        after = gc.get_count()[0]
    finally:
        gc.enable()
    assert after - before <= 50 * 4  # its objects, and no exception with its frames


TYPES = [bytes, float, int, str, bool, http.Headers, bytes | None, float | None, http.Headers | None,
         typing.Optional[str], typing.Union[int, str], typing.Sequence[str], typing.Optional[typing.Sequence[str]],
         tuple[int, str], typing.Any, typing.TextIO]  # fmt: skip
VALUES = [None, b"x", 1.5, 3, "s", True, http.Headers(), ["a"], ("a",), (1, "a"), [1], io.StringIO()]


@pytest.mark.parametrize("typeinfo", TYPES, ids=str)
def test_the_quick_type_check_judges_as_mitmproxys(typeinfo):
    for value in VALUES:
        try:
            original(typecheck_module, "field", value, typeinfo)
            expected = None
        except TypeError as e:
            expected = str(e)
        try:
            internals.check_option_type("field", value, typeinfo)
            found = None
        except TypeError as e:
            found = str(e)
        assert found == expected, (typeinfo, value)


def test_a_request_mitmproxy_makes_leaves_the_collector_nothing_once_installed():
    def growth() -> int:
        gc.collect()
        gc.disable()
        try:
            before = gc.get_count()[0]
            for _ in range(50):
                http.Request.make("POST", "http://127.0.0.1/v1/messages", b"{}")
            return gc.get_count()[0] - before
        finally:
            gc.enable()
    saved = typecheck_module.check_option_type
    try:
        typecheck_module.check_option_type = internals._CHECK_OPTION_TYPE
        slow = growth()
        internals.install_quick_type_checks()
        quick = growth()
    finally:
        typecheck_module.check_option_type = saved
    assert quick < slow / 2, (quick, slow)
