// The modelmux overview: reads the gateway's own JSON endpoints (the ones `modelmux
// status` and `modelmux usage` read) and draws them. The page itself holds no data: the
// gateway key is asked for here, kept in this tab's sessionStorage and sent as
// x-modelmux-key, never put in a URL. Everything shown goes in as text (textContent),
// never as markup.
"use strict";

const KEY_ITEM = "modelmux-key";
const REFRESH_MS = 15000;
const CHART_DAYS = 14; // the charts cover at least this many days
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const TOKEN_KINDS = [["input_tokens", "input"], ["cached_tokens", "cached"], ["output_tokens", "output"]];

const $ = (id) => document.getElementById(id);
let keyNeeded = false; // the gateway answered /healthz without its details: it has gateway keys
let timer = null;

class Refused extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function storedKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

async function getJSON(path) {
  const headers = {};
  const key = storedKey();
  if (key) headers["x-modelmux-key"] = key;
  const response = await fetch(path, { headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error && body.error.message ? body.error.message : `${path} answered ${response.status}`;
    throw new Refused(response.status, message);
  }
  return body;
}

// -- formats ----------------------------------------------------------------------

const number = (n) => (n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US"));
const ms = (v) => (v === null || v === undefined ? "-" : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(2)} s`);
const percent = (used) => (used === null || used === undefined ? "?" : `${Math.round(used * 100)}%`);

function seconds(s) {
  if (s === null || s === undefined) return "";
  s = Math.max(0, Math.round(s));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function localTime(iso) {
  const when = new Date(iso);
  return isNaN(when) ? iso : when.toLocaleString();
}

// -- credentials --------------------------------------------------------------------

function cooldownText(c) {
  // The reason starts with the status that caused it ("429: rate limited; ...").
  const why = c.reason || (c.status ? String(c.status) : "");
  const what = `${c.kind}${c.model ? ` for ${c.model}` : ""}, ${seconds(c.seconds_left)} left`;
  return why ? `${what} (${why})` : what;
}

function quotaText(q) {
  if (!q) return "";
  const windows = (q.windows || []).map((w) => `${w.name} ${percent(w.used)}${w.seconds_left ? `, resets in ${seconds(w.seconds_left)}` : ""}`);
  const left = q.left === null || q.left === undefined ? null : `${Math.round(q.left * 100)}% left`;
  return [left, ...windows].filter(Boolean).join(" · ");
}

function renderCredentials(document_) {
  const box = $("credentials");
  const providers = Object.entries(document_.providers || {});
  const parts = [];
  if (!providers.length) parts.push(el("p", { class: "muted" }, "no provider has credentials of its own"));
  for (const [name, pool] of providers) {
    const breaker = pool.breaker || {};
    const rows = pool.credentials.map((c) =>
      el("tr", { class: `state-${c.state.replace(/ /g, "-")}` },
        el("td", {}, c.label),
        el("td", {}, el("span", { class: "badge" }, c.state)),
        el("td", {}, c.cooldowns.map((cd) => el("div", {}, cooldownText(cd)))),
        el("td", {}, quotaText(c.quota)),
        el("td", { class: "num" }, number(c.in_flight)),
        el("td", { class: "num" }, number(c.requests)),
        el("td", { class: "num" }, number(c.errors)),
        el("td", { class: "num" }, number(c.input_tokens)),
        el("td", { class: "num" }, number(c.output_tokens)),
        el("td", { class: "num" }, c.last_status === null ? "-" : c.last_status),
      ));
    const breakerText = breaker.state && breaker.state !== "closed"
      ? `breaker ${breaker.state}${breaker.reason ? `: ${breaker.reason}` : ""}` : `breaker ${breaker.state || "closed"}`;
    parts.push(el("div", { class: "pool" },
      el("h3", {}, name, el("span", { class: "muted" }, ` · ${pool.strategy} · ${breakerText}`)),
      el("table", {},
        el("thead", {}, el("tr", {}, ["credential", "state", "cooldown", "quota", "in flight", "requests", "errors", "input", "output", "last status"]
          .map((h, i) => el("th", { class: i >= 4 ? "num" : null }, h)))),
        el("tbody", {}, rows))));
  }
  const unpooled = Object.entries(document_.without_credentials || {});
  if (unpooled.length) {
    parts.push(el("p", { class: "muted" }, "without credentials of their own: " + unpooled.map(([n, why]) => `${n} (${why})`).join(", ")));
  }
  // The quota of the clients' own logins on passthrough, each known by its token's fingerprint.
  const logins = document_.client_logins || [];
  if (logins.length) {
    parts.push(el("div", { class: "pool" },
      el("h3", {}, "client logins", el("span", { class: "muted" }, " · on passthrough, by their token's fingerprint")),
      el("table", {},
        el("thead", {}, el("tr", {}, ["provider", "login", "kind", "quota", "seen"].map((h) => el("th", {}, h)))),
        el("tbody", {}, logins.map((l) => el("tr", {},
          el("td", {}, l.provider), el("td", {}, l.login), el("td", {}, l.kind || "-"),
          el("td", {}, quotaText(l.quota)), el("td", {}, localTime(l.quota.seen_at))))))));
  }
  // The gateway's keys (server.api_key, server.api_keys) and what each may use.
  const keys = document_.client_keys || [];
  if (keys.length) {
    const list = (names) => (names === null ? "any" : names.join(", "));
    parts.push(el("div", { class: "pool" },
      el("h3", {}, "client keys", el("span", { class: "muted" }, " · the gateway's own keys, by label")),
      el("table", {},
        el("thead", {}, el("tr", {}, ["key", "may use", "profiles", "providers", "last minute"].map((h) => el("th", {}, h)))),
        el("tbody", {}, keys.map((k) => el("tr", {},
          el("td", {}, k.label), el("td", {}, k.admin ? "requests and this page" : "requests"),
          el("td", {}, list(k.profiles)), el("td", {}, list(k.providers)),
          el("td", {}, k.rpm === null ? "-" : `${k.last_minute} of ${k.rpm} requests (this gateway)`)))))));
  }
  box.replaceChildren(...parts);
}

// -- usage --------------------------------------------------------------------------

function usageTable(report, fields) {
  if (!report.rows.length) return el("p", { class: "muted" }, "no requests");
  const heads = [...fields, "requests", "errors", "input", "cached", "output", "ttft p50", "ttft p95"];
  const figures = (r) => [number(r.requests), number(r.errors), number(r.input_tokens), number(r.cached_tokens),
    number(r.output_tokens), ms(r.ttft_p50_ms), ms(r.ttft_p95_ms)];
  return el("table", {},
    el("thead", {}, el("tr", {}, heads.map((h, i) => el("th", { class: i >= fields.length ? "num" : null }, h)))),
    el("tbody", {},
      report.rows.map((r) => el("tr", {}, fields.map((f) => el("td", {}, r[f] === null ? "-" : r[f])),
        figures(r).map((v) => el("td", { class: "num" }, v)))),
      el("tr", { class: "total" }, el("td", { colspan: fields.length }, "total"), figures(report.total).map((v) => el("td", { class: "num" }, v)))));
}

// A stacked bar per day: `series` is [[name, colour, (day) => value]].
function barChart(title, days, series) {
  const width = 640, height = 180, left = 48, bottom = 34, top = 12;
  const totals = days.map((d) => series.reduce((sum, [, , value]) => sum + value(d), 0));
  const most = Math.max(1, ...totals);
  const slot = (width - left) / days.length;
  const bar = Math.max(2, slot * 0.7);
  const scale = (v) => (v / most) * (height - top - bottom);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  chart.append(svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }));
  chart.append(svg("text", { x: left - 6, y: top + 4, "text-anchor": "end", class: "tick" }, number(most)));
  chart.append(svg("text", { x: left - 6, y: height - bottom, "text-anchor": "end", class: "tick" }, "0"));
  days.forEach((d, i) => {
    const x = left + i * slot + (slot - bar) / 2;
    let y = height - bottom;
    for (const [name, colour, value] of series) {
      const v = value(d);
      if (!v) continue;
      const h = scale(v);
      y -= h;
      chart.append(svg("rect", { x, y, width: bar, height: h, fill: colour },
        svg("title", {}, `${d.day} ${name}: ${number(v)}`)));
    }
    const every = Math.ceil(days.length / 10);
    if (i % every === 0 || i === days.length - 1) {
      chart.append(svg("text", { x: x + bar / 2, y: height - bottom + 14, "text-anchor": "middle", class: "tick" }, d.day.slice(5)));
    }
  });
  const legend = el("div", { class: "legend" }, series.map(([name, colour]) =>
    el("span", {}, svgSwatch(colour), name)));
  return el("figure", {}, el("figcaption", {}, title), chart, legend);
}

function svgSwatch(colour) {
  return svg("svg", { viewBox: "0 0 10 10", class: "swatch" }, svg("rect", { width: 10, height: 10, fill: colour }));
}

function renderUsage(period, daily, byProvider, byModel, byCredential, byClientKey) {
  const days = daily.daily;
  const providers = [...new Set(days.flatMap((d) => d.rows.map((r) => r.provider)))];
  const requests = providers.map((p, i) => [p === null ? "-" : p, PALETTE[i % PALETTE.length],
    (d) => d.rows.filter((r) => r.provider === p).reduce((sum, r) => sum + r.requests, 0)]);
  const tokens = TOKEN_KINDS.map(([field, name], i) => [name, PALETTE[i], (d) => d.total[field]]);
  const span = period === 1 ? `today (${byProvider.to})` : `the last ${period} days (${byProvider.from} to ${byProvider.to})`;
  $("usage").replaceChildren(
    el("div", { class: "charts" },
      barChart(`requests per day by provider, ${days[0].day} to ${daily.to}`, days, requests),
      barChart(`tokens per day, ${days[0].day} to ${daily.to}`, days, tokens)),
    el("h3", {}, `by provider, ${span}`), usageTable(byProvider, ["provider"]),
    el("h3", {}, `by model, ${span}`), usageTable(byModel, ["provider", "model"]),
    el("h3", {}, `by credential, ${span}`), usageTable(byCredential, ["provider", "credential"]),
    // Only where clients present keys of the gateway's (server.api_key, server.api_keys).
    ...(byClientKey.rows.some((r) => r.client_key)
      ? [el("h3", {}, `by client key, ${span}`), usageTable(byClientKey, ["client_key"])] : []),
  );
}

// -- errors -------------------------------------------------------------------------

function renderErrors(document_) {
  const box = $("errors");
  if (!document_.errors.length) {
    box.replaceChildren(el("p", { class: "muted" }, "none since the gateway started"));
    return;
  }
  const note = document_.web_ui ? null
    : el("p", { class: "muted" }, "mitmweb is not running (modelmux serve --web shows every flow): no links to flows");
  const rows = document_.errors.map((e) => {
    const where = e.provider ? `${e.requested_model || "-"} → ${e.provider}/${e.model || "-"}` : `${e.method} ${e.path}`;
    const who = e.failover && e.failover.length > 1 ? e.failover.join(" → ") : e.credential || "";
    return el("tr", {},
      el("td", {}, localTime(e.time)),
      el("td", {}, `${e.status || "no answer"}${e.error_type ? ` ${e.error_type}` : ""}`),
      el("td", {}, where),
      el("td", {}, who),
      el("td", { class: "message" }, e.message || ""),
      el("td", {}, e.link ? el("a", { href: e.link, target: "_blank", rel: "noopener noreferrer" }, "flow") : ""));
  });
  box.replaceChildren(...[note, el("table", {},
    el("thead", {}, el("tr", {}, ["time", "status", "request", "credential", "message", "mitmweb"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows))].filter(Boolean));
}

// -- the page -----------------------------------------------------------------------

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function clearData() {
  for (const id of ["credentials", "usage", "errors"]) $(id).replaceChildren();
  $("data").hidden = true;
}

function askForKey(why) {
  clearData();
  notice(why);
  $("key-form").hidden = false;
  $("forget").hidden = !storedKey();
  $("key").focus();
}

async function load() {
  const period = Number($("period").value);
  const chartDays = Math.max(period, CHART_DAYS);
  try {
    const [credentials, daily, byProvider, byModel, byCredential, byClientKey, errors] = await Promise.all([
      getJSON("/modelmux/credentials"),
      getJSON(`/modelmux/usage?days=${chartDays}&by=provider&daily=true`),
      getJSON(`/modelmux/usage?days=${period}&by=provider`),
      getJSON(`/modelmux/usage?days=${period}&by=model`),
      getJSON(`/modelmux/usage?days=${period}&by=credential`),
      getJSON(`/modelmux/usage?days=${period}&by=client_key`),
      getJSON("/modelmux/errors"),
    ]);
    $("key-form").hidden = true;
    $("forget").hidden = !storedKey();
    $("data").hidden = false;
    notice("");
    renderCredentials(credentials);
    renderUsage(period, daily, byProvider, byModel, byCredential, byClientKey);
    renderErrors(errors);
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (e instanceof Refused && (e.status === 401 || e.status === 403)) {
      if (e.status === 401) sessionStorage.removeItem(KEY_ITEM);
      askForKey(e.message);
    } else {
      notice(`cannot reach the gateway: ${e.message}`);
    }
  }
}

async function start() {
  // /healthz is open: without a key it shows its details only where there is no gateway key.
  try {
    const health = await getJSON("/healthz");
    keyNeeded = !health.config;
    $("gateway").textContent = `version ${health.version}${health.config ? ` · ${health.config.path}` : ""}`;
  } catch (e) {
    notice(`cannot reach the gateway: ${e.message}`);
    return;
  }
  if (keyNeeded && !storedKey()) {
    askForKey("");
    return;
  }
  await load();
}

function schedule() {
  clearInterval(timer);
  timer = setInterval(() => {
    if (!document.hidden && $("key-form").hidden) load();
  }, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    $("key").value = "";
    if (!key) return;
    sessionStorage.setItem(KEY_ITEM, key);
    start();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_ITEM);
    askForKey("");
  });
  $("refresh").addEventListener("click", load);
  $("period").addEventListener("change", load);
  schedule();
  start();
});
