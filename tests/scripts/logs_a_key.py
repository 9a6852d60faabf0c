"""A test script: logs the routes.yaml key it is given, once per Messages request, as a
careless addon would (mitmdump -s, after addons/router.py)."""

import logging

logger = logging.getLogger("careless")
KEY = "k-logged-0123456789"


class LogsAKey:
    def request(self, flow) -> None:
        if flow.request.path.startswith("/v1/messages"):
            logger.warning("sending with %s", KEY)
            try:
                raise ValueError(f"bad key {KEY}")
            except ValueError:
                logger.exception("and a traceback")


addons = [LogsAKey()]
