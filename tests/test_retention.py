"""mitmweb keeps at most modelmux_max_flows flows, dropping the oldest finished ones."""

from mitmproxy.addons import view as mitmproxy_view
from mitmproxy.test import taddons, tflow

from modelmux.addons.retention import Retention


def test_the_newest_flows_are_kept():
    view, retention = mitmproxy_view.View(), Retention()
    with taddons.context(view, retention) as context:
        context.configure(retention, modelmux_max_flows=10)
        flows = [tflow.tflow(resp=True) for _ in range(25)]
        for flow in flows:
            flow.live = False
            view.add([flow])
            retention.response(flow)
        assert view.store_count() <= 11  # trimmed in batches of a tenth
        live = tflow.tflow(resp=True)  # still in flight: never dropped
        view.add([live])
        for flow in flows[:2]:
            retention.response(flow)
        ids = [f.id for f in view]
        assert ids[-1] == live.id
        assert [f.id for f in flows[-3:]] == ids[-4:-1]
        assert flows[0].id not in ids


def test_zero_keeps_everything():
    view, retention = mitmproxy_view.View(), Retention()
    with taddons.context(view, retention) as context:
        context.configure(retention, modelmux_max_flows=0)
        for _ in range(30):
            flow = tflow.tflow(resp=True)
            flow.live = False
            view.add([flow])
            retention.response(flow)
        assert view.store_count() == 30
