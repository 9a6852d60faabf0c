"""An addon whose request hook raises when a request asks it to (`x-test-raise: WHERE`),
for the Guard's tests: raising_first.py loads it before modelmux's script, raising_last.py
after it (mitmdump's `-s` order is the chain's). The header is read in `requestheaders`,
before the Router leaves an upstream only the headers it needs."""

from mitmproxy import http


class Raising:
    def __init__(self, where: str) -> None:
        self.where = where
        self.name = f"raising_{where}"  # mitmproxy keys addons by name: one per script
        self.asked: set[str] = set()  # ids of the flows to raise for

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.request.headers.get("x-test-raise") == self.where:
            self.asked.add(flow.id)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.id in self.asked:
            self.asked.discard(flow.id)
            raise RuntimeError(f"the test addon raised ({self.where})")
