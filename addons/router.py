"""modelmux gateway: `mitmdump -s addons/router.py --mode reverse:https://api.anthropic.com@127.0.0.1:PORT`.

The same arguments with mitmweb give the gateway with mitmproxy's web UI. Options:
`--set modelmux_config=PATH` (default: the routes.yaml beside this folder) and
`--set modelmux_record=FILE` (record the session for `modelmux replay`). The addons
are the installed package's list (`modelmux/addons/chain.py`, what `modelmux serve`
runs); this script is the checkout's way in.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
try:
    import modelmux  # noqa: F401
except ImportError:  # a checkout used without `pip install -e .`
    sys.path.insert(0, str(REPO))

from modelmux.addons import chain  # noqa: E402

addons = chain.build(default_config=REPO / "routes.yaml")
