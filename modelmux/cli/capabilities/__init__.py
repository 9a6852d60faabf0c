"""`modelmux check --deep`: what a provider and model really do, found with a few small
requests built by the gateway's own translation (exchange.prepare), and the routes.yaml
lines that follow from it.

requests.py: the Anthropic requests each probe sends (pure); readings.py: what an
upstream's own answer shows (pure); limits.py: the numbers an error names (pure);
findings.py: what the probes established and the lines it proposes (pure); deep.py:
sends the probes to one provider, in order, each sent as what was learned so far would
have the gateway send it; report.py: the command's text and JSON.
"""
