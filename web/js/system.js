// #/system: DESIGN §1's shape as a live diagram, coloured by each component's health, with
// the breakers, the fan-out pipeline and the caches beside it; refreshed every few seconds
// from the public GET /api/v1/system/status, so a chaos experiment can be watched.
import { h, s, replace } from "./dom.js";
import { call, describe } from "./api.js";

const REFRESH_MS = 3000;
const W = 150;
const H = 58;

// Where each component sits: the request path left to right, the stores in the middle,
// the workers that move events through Kafka on the right.
const LAYOUT = {
  nginx: [10, 205],
  gateway: [185, 205],
  users: [360, 80],
  timeline: [360, 335],
  postgres: [545, 20],
  redis: [545, 205],
  cassandra: [545, 390],
  "users-relay": [730, 20],
  kafka: [730, 205],
  "timeline-relay": [730, 390],
  fanout: [905, 110],
  "timeline-authors": [905, 300],
};
const VIEW_W = 1065;
const VIEW_H = 470;

// Used only until the status answers with its own list of arrows.
const DEFAULT_EDGES = [
  ["nginx", "gateway"], ["gateway", "users"], ["gateway", "timeline"],
  ["users", "postgres"], ["users", "redis"], ["users-relay", "kafka"],
  ["timeline", "cassandra"], ["timeline", "redis"], ["timeline-relay", "kafka"],
  ["kafka", "fanout"], ["fanout", "users"], ["fanout", "redis"],
  ["kafka", "timeline-authors"],
].map(([from, to]) => ({ from, to }));

const STATUSES = new Set(["up", "degraded", "down", "unknown"]);

function statusOf(value) {
  return STATUSES.has(value) ? value : "unknown";
}

/** Where the segment from the centre of a box towards (dx, dy) leaves the box. */
function border(cx, cy, dx, dy) {
  const t = Math.min(dx ? (W / 2 + 4) / Math.abs(dx) : Infinity, dy ? (H / 2 + 4) / Math.abs(dy) : Infinity);
  return [cx + dx * t, cy + dy * t];
}

function positions(components) {
  const pos = new Map();
  let spare = 0;
  for (const c of components) {
    const at = LAYOUT[c.name] || [20 + 170 * spare++, VIEW_H - H - 4];
    pos.set(c.name, at);
  }
  return pos;
}

function diagram(status) {
  const components = status.components || [];
  const pos = positions(components);
  const svg = s("svg", { viewBox: `0 0 ${VIEW_W} ${VIEW_H}`, class: "diagram", role: "img",
    "aria-label": "Diagram of Murmur's components and the calls between them, each labelled with its status; the table below lists the same." },
  s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))));
  const edges = s("g", { class: "edges" });
  for (const edge of (status.edges && status.edges.length ? status.edges : DEFAULT_EDGES)) {
    const a = pos.get(edge.from);
    const b = pos.get(edge.to);
    if (!a || !b) continue;
    const [ax, ay] = [a[0] + W / 2, a[1] + H / 2];
    const [bx, by] = [b[0] + W / 2, b[1] + H / 2];
    const [x1, y1] = border(ax, ay, bx - ax, by - ay);
    const [x2, y2] = border(bx, by, ax - bx, ay - by);
    edges.append(s("line", { x1, y1, x2, y2, class: "edge", "marker-end": "url(#arrow)",
      "data-from": edge.from, "data-to": edge.to }));
  }
  const nodes = s("g", { class: "nodes" });
  for (const c of components) {
    const [x, y] = pos.get(c.name);
    const st = statusOf(c.status);
    nodes.append(s("g", { class: `node st-${st}`, "data-component": c.name, "data-status": st,
      transform: `translate(${x} ${y})` },
    s("title", {}, `${c.name} (${c.kind}): ${st}${c.detail ? ` — ${c.detail}` : ""}`),
    s("rect", { width: W, height: H, rx: 8, class: `kind-${c.kind}` }),
    s("text", { x: W / 2, y: 23, class: "node-name" }, c.name),
    s("text", { x: W / 2, y: 44, class: "node-status" }, `${symbol(st)} ${st}`)));
  }
  svg.append(edges, nodes);
  return svg;
}

// A shape per status as well as a colour: the state reads without colour vision too.
function symbol(st) {
  return { up: "●", degraded: "▲", down: "✕", unknown: "?" }[st];
}

function componentTable(status) {
  return h("table", { class: "data wide" },
    h("caption", {}, "Components"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Component"), h("th", { scope: "col" }, "Kind"),
      h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Detail"))),
    h("tbody", {}, (status.components || []).map((c) => {
      const st = statusOf(c.status);
      return h("tr", { "data-component": c.name },
        h("th", { scope: "row" }, c.name), h("td", {}, c.kind),
        h("td", {}, h("span", { class: `badge st-${st}` }, `${symbol(st)} ${st}`)),
        h("td", {}, c.detail || ""));
    })));
}

function breakerTable(status) {
  const rows = (status.breakers || []).map((b) => {
    const state = ["closed", "half_open", "open"].includes(b.state) ? b.state : "unknown";
    const label = state.replace("_", "-");
    return h("tr", { "data-breaker": b.name, "data-process": b.process, "data-state": state },
      h("td", {}, b.process), h("th", { scope: "row" }, b.name),
      h("td", {}, h("span", { class: `badge br-${state}` }, label)));
  });
  return h("table", { class: "data breakers" },
    h("caption", {}, "Circuit breakers"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Process"), h("th", { scope: "col" }, "Breaker"),
      h("th", { scope: "col" }, "State"))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 3 }, "No breaker reported."))));
}

function number(value, unit = "") {
  if (value === null || value === undefined) return "n/a";
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(2);
  return `${shown}${unit}`;
}

function pipeline(status) {
  const p = status.pipeline || {};
  const item = (key, label, value) => h("div", { "data-metric": key },
    h("dt", {}, label), h("dd", {}, value));
  return h("section", { class: "panel", "aria-labelledby": "pipeline-heading" },
    h("h2", { id: "pipeline-heading" }, "Fan-out pipeline"),
    h("dl", { class: "metrics" },
      item("consumer_lag", "Fan-out consumer lag", number(p.consumer_lag, " messages")),
      item("fanout_lag_seconds", "Fan-out lag (post to delivered)", number(p.fanout_lag_seconds, " s")),
      item("outbox_backlog", "Outbox backlog", number(p.outbox_backlog, " events")),
      item("authors_consumer_lag", "Author projection lag", number(p.authors_consumer_lag, " messages"))));
}

function caches(status) {
  const rows = (status.caches || []).map((c) => {
    const ratio = typeof c.hit_ratio === "number" ? c.hit_ratio : null;
    return h("tr", { "data-cache": c.name },
      h("th", { scope: "row" }, c.name),
      h("td", {}, ratio === null ? "n/a" : `${(ratio * 100).toFixed(1)} %`,
        ratio === null ? null : h("meter", { min: 0, max: 1, value: ratio, "aria-hidden": "true" })),
      h("td", {}, String(c.requests ?? 0)));
  });
  return h("table", { class: "data" },
    h("caption", {}, "Caches"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Cache"), h("th", { scope: "col" }, "Hit ratio"),
      h("th", { scope: "col" }, "Requests"))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 3 }, "No cache reported."))));
}

/** Render the system page into `main`; returns a function that stops its refreshing. */
export function systemView(main) {
  const overall = h("p", { class: "overall", id: "overall" }, "Loading the system's status…");
  // Only a change of the overall status is announced, not every refresh.
  const announce = h("p", { class: "visually-hidden", "aria-live": "polite" });
  const problem = h("p", { class: "form-status", role: "status" });
  const picture = h("div", { class: "diagram-wrap" });
  const details = h("div", { class: "system-grid" });
  main.append(h("h1", {}, "System"), overall, announce, problem, picture, details);

  let stopped = false;
  let timer = null;
  let last = null;

  async function refresh() {
    try {
      const { data } = await call("GET", "/system/status", { area: null });
      problem.textContent = "";
      const st = ["ok", "degraded", "down"].includes(data.status) ? data.status : "unknown";
      replace(overall, "Murmur is ", h("strong", { class: `badge sys-${st}`, "data-overall": st }, st),
        " · updated ", h("time", { datetime: data.generated_at }, new Date(data.generated_at).toLocaleTimeString()));
      if (st !== last) announce.textContent = `Murmur is ${st}.`;
      last = st;
      replace(picture, diagram(data));
      replace(details, h("div", { class: "stack" }, pipeline(data), caches(data)), breakerTable(data),
        componentTable(data));
    } catch (err) {
      problem.textContent = `The status could not be read (showing the last one). ${describe(err)}`;
    } finally {
      if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
    }
  }
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
