"""modelmux's overhead benchmark: `python -m bench` (`--quick` for a smoke run).

A fast fake upstream (upstreams.py, its own process), the gateways in front of it
(targets.py; the baseline's only addon is sse_stream.py), a lean HTTP/1.1 client
(client.py), what a correct answer is (answers.py), the scenarios (measure.py) and the
table (report.py). token_accuracy.py is a separate benchmark; its Claude Code request
builder is reused here. walk.py (`python -m bench.walk`) counts the moves between
modelmux's modules on a request's way through, with tracer.py inside the gateway.
"""
