"""A test script: the gateway's Metrics take a second to count each Messages answer,
blocking the loop (mitmdump -s, after addons/router.py)."""

import time

from mitmproxy import ctx

DELAY = 1.0


class SlowBookkeeping:
    def running(self) -> None:
        metrics = next(part for part in ctx.master.addons.get("modelmux").parts if type(part).__name__ == "Metrics")
        count = metrics._count

        def slowly(flow) -> None:
            if flow.request.path.startswith("/v1/messages"):  # not the health checks of the test's start
                time.sleep(DELAY)
            count(flow)

        metrics._count = slowly  # the Chain holds Metrics.response, which calls it


addons = [SlowBookkeeping()]
