"""modelmux gateway: `mitmdump -s addons/router.py --mode reverse:https://api.anthropic.com@127.0.0.1:PORT`.

The same arguments with mitmweb give the gateway with mitmproxy's web UI. Options:
`--set modelmux_config=PATH` (default: the routes.yaml beside this folder) and, as the
launcher does, `--set connection_strategy=lazy`.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
try:
    import modelmux  # noqa: F401
except ImportError:  # a checkout used without `pip install -e .`
    sys.path.insert(0, str(REPO))

from modelmux.addons.credentials import Credentials  # noqa: E402
from modelmux.addons.dashboard import Dashboard  # noqa: E402
from modelmux.addons.failover import Failover  # noqa: E402
from modelmux.addons.failures import Failures  # noqa: E402
from modelmux.addons.heartbeat import Heartbeat  # noqa: E402
from modelmux.addons.inbound import InboundAuth  # noqa: E402
from modelmux.addons.listeners import Listeners  # noqa: E402
from modelmux.addons.local import LocalAPI  # noqa: E402
from modelmux.addons.redactor import Redactor  # noqa: E402
from modelmux.addons.relay import Relay  # noqa: E402
from modelmux.addons.retention import Retention  # noqa: E402
from modelmux.addons.router import Router  # noqa: E402
from modelmux.addons.settings import Settings  # noqa: E402
from modelmux.addons.translator import Translator  # noqa: E402
from modelmux.addons.usage import Usage  # noqa: E402

settings = Settings(default_config=REPO / "routes.yaml")
dashboard = Dashboard()
credentials = Credentials(settings, dashboard)
relay = Relay(Failover(credentials))
usage = Usage(settings)

addons = [
    settings,
    Listeners(settings),
    InboundAuth(settings),
    LocalAPI(settings, credentials, usage),
    Router(settings, credentials, relay),
    Translator(),
    Heartbeat(),
    Failures(settings),
    credentials,  # after Failures (it names failures)
    relay,
    dashboard,  # after every addon that sets a stream (it meters what the client gets) and before the readers of its summary
    Redactor(settings),  # last of the hooks that read the request: after it, no secret is left
    usage,  # after the Dashboard, whose response/error hooks complete the summary it counts
    Retention(),
]
