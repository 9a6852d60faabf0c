"""Metrics: Prometheus metrics of every request the gateway routed, served at `/metrics`
(answered by LocalAPI, behind the gateway key like every path but /healthz).

Per request it counts what the Dashboard's summary says (after Usage, which counts
the same summaries, so `modelmux usage` and /metrics agree) and each upstream attempt
in the flow's notes, whichever send path made them. The credentials' state, in-flight
counts, breakers and quota are read from the pools when scraped. The metric list and
example queries: docs/metrics.md.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from mitmproxy import http
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from modelmux.addons.credentials import Credentials
from modelmux.addons.notes import Notes, find_notes
from modelmux.credentials.quota import Quota
from modelmux.credentials.snapshot import STATES, snapshot
from modelmux.secrets import CLIENT_TOKEN

COUNTED = "metrics_counted"  # a notes flag: a flow may end in response and error both
REQUEST_LABELS = ("provider", "model", "credential", "client_key")
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")  # the label ...
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens")  # ... and the summary's field
# Time to first token: a second or two is usual; a thinking model's can be a minute.
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
# A whole answer: from a fraction of a second to Claude Code's 10-minute request timeout.
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)
BREAKER_STATES = ("closed", "open", "half-open")


class _Buckets:
    """A histogram's counts per bucket (not cumulated: that is done when scraped)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value: Prometheus' `le`
        self.sum += value


class _Series:
    """The counts of one (provider, model, credential, client key)."""

    __slots__ = ("requests", "errors", "tokens", "ttft", "duration")

    def __init__(self) -> None:
        self.requests: dict[int, int] = defaultdict(int)  # by the client's status
        self.errors: dict[str, int] = defaultdict(int)  # by error type
        self.tokens = [0] * len(TOKEN_TYPES)
        self.ttft = _Buckets(TTFT_BUCKETS)
        self.duration = _Buckets(DURATION_BUCKETS)


class Metrics(Collector):
    """Counts in plain numbers, turned into Prometheus' metric families when scraped: a
    prometheus_client Counter or Histogram takes a lock on every update, and a request
    makes eight (6 µs per request, measured, against about 1.5 µs for these)."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self._attempts: dict[tuple[str, str, str], int] = defaultdict(int)
        # Its own registry, not prometheus_client's global one: a second gateway in one
        # process (tests, a replay) gets its own numbers, and no process metric is mixed in.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.registry.register(PoolsCollector(credentials))

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format the scraper's Accept header asks for (Prometheus'
        text format, or OpenMetrics), and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    # -- counting ---------------------------------------------------------------------

    def response(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        """Runs after the Dashboard's hook, which has completed the summary."""
        if (found := first_look(flow, COUNTED)) is None:
            return
        notes, summary = found
        labels = (summary["provider"] or "", summary["model"] or "", summary["credential"] or "",
                  notes.get("client_key") or "")
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = _Series()
        series.requests[summary["status"]] += 1
        if (error_type := summary["error_type"]) is not None:
            series.errors[error_type] += 1
        if summary["kind"] != "routed":
            return  # refused: no upstream asked, nothing answered
        tokens = series.tokens
        for i, field in enumerate(TOKEN_FIELDS):
            tokens[i] += summary[field]
        if (ttft := summary["ttft_ms"]) is not None:
            series.ttft.observe(ttft / 1000)
        series.duration.observe(summary["total_ms"] / 1000)
        for attempt in attempts_of(notes, summary):
            outcome = attempt.get("outcome", "")
            if isinstance(outcome, str) and outcome.startswith("not sent"):
                outcome = "not sent"  # the relay notes why after a colon: one series, not one per reason
            self._attempts[(attempt["provider"], attempt["credential"] or "", str(outcome))] += 1

    # -- scraping ---------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("modelmux_requests", "Requests the gateway routed, or refused without asking "
                                       "an upstream, by the HTTP status the client got (0: none, it went away).",
                                       labels=(*REQUEST_LABELS, "status"))
        errors = CounterMetricFamily("modelmux_errors", "Requests whose client got an error (an error status, or an "
                                     "error event in a 200 stream), by Anthropic error type.",
                                     labels=(*REQUEST_LABELS, "type"))
        tokens = CounterMetricFamily("modelmux_tokens", "Tokens as the client got them in Anthropic's usage: input "
                                     "(uncached), output, cache_read, cache_write.", labels=(*REQUEST_LABELS, "type"))
        attempts = CounterMetricFamily("modelmux_upstream_attempts", "Attempts at an upstream, by provider, credential "
                                       "and outcome (its status, or timeout, connect, reset, cancelled, not sent).",
                                       labels=("provider", "credential", "status"))
        ttft: dict[tuple[str, str], _Buckets] = {}
        duration: dict[tuple[str, str], _Buckets] = {}
        for labels, series in self._series.items():
            for status, count in series.requests.items():
                requests.add_metric((*labels, str(status)), count)
            for error_type, count in series.errors.items():
                errors.add_metric((*labels, error_type), count)
            for kind, count in zip(TOKEN_TYPES, series.tokens, strict=True):
                if count:
                    tokens.add_metric((*labels, kind), count)
            _merge(ttft, labels[:2], series.ttft)
            _merge(duration, labels[:2], series.duration)
        for (provider, credential, outcome), count in self._attempts.items():
            attempts.add_metric((provider, credential, outcome), count)
        yield from (requests, errors, tokens, attempts)
        yield _histogram("modelmux_time_to_first_token_seconds", "From the request to the first content event the "
                         "client got (a whole JSON answer: to the answer).", ttft)
        yield _histogram("modelmux_request_duration_seconds", "From the request to the end of its answer.", duration)


def first_look(flow: http.HTTPFlow, flag: str) -> tuple[Notes, dict[str, Any]] | None:
    """The notes and the Dashboard's summary of a request to count (and trace), the first
    time the reader that marks it `flag` asks: a flow may end in response and error both.
    A request is one the gateway routed, or refused without asking an upstream on the
    API's paths (a refused scrape of /metrics is not)."""
    notes = find_notes(flow)
    if notes is None or notes.get(flag):
        return None
    summary = notes.get("summary")
    if summary is None or not (summary["kind"] == "routed" or summary["kind"] == "refused"
                               and summary["path"].startswith("/v1/")):
        return None
    notes[flag] = True  # type: ignore[literal-required]
    return notes, summary


def attempts_of(notes: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """A routed flow's upstream attempts. One mitmproxy sent without a credential of a pool
    (passthrough, auth: none) notes none: its one attempt is the summary's."""
    if summary["kind"] != "routed":
        return []
    return notes.get("attempts") or [{
        "provider": summary["provider"], "credential": summary["credential"], "model": summary["model"],
        "outcome": summary["status"], "status": summary["status"] or None, "ms": summary["total_ms"]}]


def _merge(into: dict[tuple[str, str], _Buckets], key: tuple[str, str], buckets: _Buckets) -> None:
    """The histograms are per provider and model: a credential or client key would
    multiply their series by a dozen buckets each."""
    merged = into.get(key)
    if merged is None:
        merged = into[key] = _Buckets(buckets.bounds)
    merged.counts = [a + b for a, b in zip(merged.counts, buckets.counts, strict=True)]
    merged.sum += buckets.sum


def _histogram(name: str, documentation: str, histograms: dict[tuple[str, str], _Buckets]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=("provider", "model"))
    for labels, buckets in histograms.items():
        cumulative = list(accumulate(buckets.counts))
        bounds = [*(floatToGoString(b) for b in buckets.bounds), "+Inf"]
        family.add_metric(labels, list(zip(bounds, cumulative, strict=True)), buckets.sum)
    return family


class PoolsCollector(Collector):
    """The credential pools' state at scrape time: each credential's state, requests in
    flight, cooldown and quota, and each provider's breaker."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def collect(self) -> Iterator[Metric]:
        pools = self.credentials.pools
        if pools is None:
            return
        state = GaugeMetricFamily("modelmux_credential_state", "1 for the credential's state (healthy, cooling, "
                                  "unhealthy, needs attention, needs login), 0 for the others.",
                                  labels=("provider", "credential", "state"))
        in_flight = GaugeMetricFamily("modelmux_credential_in_flight", "Requests in flight on the credential.",
                                      labels=("provider", "credential"))
        cooldown = GaugeMetricFamily("modelmux_credential_cooldown_seconds", "Seconds until the credential's "
                                     "longest active cooldown ends (0: none).", labels=("provider", "credential"))
        breaker = GaugeMetricFamily("modelmux_breaker_state", "1 for the provider breaker's state (closed, open, "
                                    "half-open), 0 for the others.", labels=("provider", "state"))
        # `login`: on passthrough (credential "client token"), the fingerprint of the client's
        # own token; empty, which Prometheus takes for no label, for a pooled credential.
        used = GaugeMetricFamily("modelmux_quota_used_ratio", "The share of a subscription's quota window used, as "
                                 "the credential's (or the client's login's) last answer said (Anthropic's unified "
                                 "headers, Codex's).", labels=("provider", "credential", "login", "window"))
        resets = GaugeMetricFamily("modelmux_quota_reset_timestamp_seconds", "When the quota window resets (Unix time).",
                                   labels=("provider", "credential", "login", "window"))
        left = GaugeMetricFamily("modelmux_quota_left_ratio", "The share left of the credential's tightest quota "
                                 "window (0 while the account is refused): what strategy most-quota picks by.",
                                 labels=("provider", "credential", "login"))
        now = pools.now()
        document = snapshot(pools)
        for name, pool in pools.pools.items():
            described = document["providers"][name]
            for kind in BREAKER_STATES:
                breaker.add_metric((name, kind), float(described["breaker"]["state"] == kind))
            for member, shown in zip(pool.members, described["credentials"], strict=True):
                labels = (name, member.label)
                for kind in STATES:
                    state.add_metric((*labels, kind), float(shown["state"] == kind))
                in_flight.add_metric(labels, member.in_flight)
                cooldown.add_metric(labels, max((c["seconds_left"] for c in shown["cooldowns"]), default=0.0))
                if member.quota is not None:
                    _quota((*labels, ""), member.quota, now, used, resets, left)
        for login in pools.logins.dump():
            _quota((login.provider, CLIENT_TOKEN, login.fingerprint), login.quota, now, used, resets, left)
        yield from (state, in_flight, cooldown, breaker, used, resets, left)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read at scrape time only


def _quota(labels: tuple[str, str, str], seen: Quota, now: float, used: GaugeMetricFamily,
           resets: GaugeMetricFamily, left: GaugeMetricFamily) -> None:
    """One credential's or login's quota, as it stands `now`: a window whose reset has
    passed since it was seen has nothing used (Quota.describe)."""
    if (share := seen.left(now)) is not None:
        left.add_metric(labels, share)
    for window in seen.windows:
        if window.used is not None:
            used.add_metric((*labels, window.name), 0.0 if window.reset(now) else window.used)
        if window.resets_at is not None:
            resets.add_metric((*labels, window.name), window.resets_at)
