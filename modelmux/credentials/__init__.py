"""A provider's credentials: which one serves a request, and what the upstream's answer
does to it. `pools` leases them (strategies, tiers, affinity); `cooldowns` is the table
of what an answer means for the credential that got it (how a 429 cools a key);
`breakers` is a provider's circuit breaker; `refusals` says why none can serve;
`state_file` keeps cooldowns and counters across restarts; `snapshot` is the redacted
view `modelmux status` shows. Pure: no mitmproxy, no network, an injected clock.
Nothing is re-exported here: an import names its module."""
