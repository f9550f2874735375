// durably dashboard: graph layout (dagre), timeline placement, live refresh, confirmations.
// Every text from the database is set with textContent; HTML fragments come escaped from the server.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function shorten(text, max) {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function drawGraph() {
  const data = document.getElementById("graph-data");
  const target = document.querySelector("svg.graph");
  if (!data || !target || typeof dagre === "undefined") return;
  const model = JSON.parse(data.textContent);
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 36, marginx: 40, marginy: 40 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of model.nodes) {
    const label = shorten(n.label, 32);
    const meta = `${n.kind} · ${n.status}`;
    g.setNode(n.id, { width: Math.max(90, 7.6 * label.length + 24, 6.4 * meta.length + 24), height: 44, label, node: n });
  }
  model.edges.forEach((e, i) => { if (e.kind === "flow") g.setEdge(e.from, e.to, {}, "f" + i); });
  dagre.layout(g);

  const graphSize = g.graph();
  const width = graphSize.width + (model.edges.some((e) => e.kind === "undo") ? 80 : 0);  // room for undo curves
  target.setAttribute("viewBox", `0 0 ${width} ${graphSize.height}`);
  target.setAttribute("width", width);
  target.setAttribute("height", graphSize.height);
  const defs = svg("defs", {}, target);
  for (const kind of ["flow", "undo"]) {
    const marker = svg("marker", { id: "arrow-" + kind, viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead " + kind }, marker);
  }

  const groupLayer = svg("g", { class: "groups" }, target);
  const edgeLayer = svg("g", { class: "edges" }, target);
  const nodeLayer = svg("g", { class: "nodes" }, target);

  const groupOf = new Map(model.groups.map((gr) => [gr.id, gr]));
  const height = (gr) => 1 + Math.max(0, ...gr.members.filter((m) => groupOf.has(m)).map((m) => height(groupOf.get(m))));
  for (const gr of model.groups) {
    const boxes = [gr.id, ...gr.members].map((id) => g.node(id)).filter(Boolean);
    const pad = 8 * height(gr);
    const x0 = Math.min(...boxes.map((b) => b.x - b.width / 2)) - pad;
    const y0 = Math.min(...boxes.map((b) => b.y - b.height / 2)) - pad - 12;
    const x1 = Math.max(...boxes.map((b) => b.x + b.width / 2)) + pad;
    const y1 = Math.max(...boxes.map((b) => b.y + b.height / 2)) + pad;
    const box = svg("g", { class: "group " + gr.kind, "data-group": gr.id }, groupLayer);
    svg("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 10 }, box);
    svg("text", { x: x0 + 8, y: y0 + 13, class: "group-label" }, box).textContent = shorten(`${gr.kind}: ${gr.label}`, 60);
  }

  for (const e of g.edges()) {
    const points = g.edge(e).points;
    svg("path", { d: "M " + points.map((p) => `${p.x} ${p.y}`).join(" L "), class: "edge flow",
      "marker-end": "url(#arrow-flow)" }, edgeLayer);
  }
  for (const e of model.edges.filter((e) => e.kind === "undo")) {
    const a = g.node(e.from), b = g.node(e.to);
    if (!a || !b) continue;
    const x1 = a.x + a.width / 2, x2 = b.x + b.width / 2, bend = Math.max(x1, x2) + 60;
    svg("path", { d: `M ${x1} ${a.y} C ${bend} ${a.y}, ${bend} ${b.y}, ${x2} ${b.y}`, class: "edge undo",
      "marker-end": "url(#arrow-undo)", "data-from": e.from, "data-to": e.to }, edgeLayer);
  }
  for (const id of g.nodes()) {
    const n = g.node(id);
    const box = svg("g", { class: `node ${n.node.status} kind-${n.node.kind}`, "data-op": id,
      transform: `translate(${n.x - n.width / 2}, ${n.y - n.height / 2})`, tabindex: 0 }, nodeLayer);
    svg("title", {}, box).textContent = `${n.node.label} (${n.node.kind}, ${n.node.status})`;
    svg("rect", { width: n.width, height: n.height, rx: 6 }, box);
    svg("text", { x: 10, y: 18, class: "name" }, box).textContent = n.label;
    svg("text", { x: 10, y: 34, class: "meta" }, box).textContent = `${n.node.kind} · ${n.node.status}`;
    const open = () => {
      const item = document.getElementById("op-" + id);
      if (!item) return;
      const details = item.querySelector("details");
      if (details) details.open = true;
      item.scrollIntoView({ behavior: "smooth", block: "center" });
    };
    box.addEventListener("click", open);
    box.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
  }
}

function placeTimeline() {
  for (const bar of document.querySelectorAll(".timeline .bar[data-left]")) {
    bar.style.left = bar.dataset.left + "%";
    bar.style.width = `max(3px, ${bar.dataset.width}%)`;
  }
  for (const label of document.querySelectorAll(".timeline .label[data-depth]")) {
    label.style.paddingLeft = (0.25 + 0.9 * Number(label.dataset.depth)) + "em";
  }
}

function live() {
  for (const el of document.querySelectorAll("[data-live]")) {
    let dirty = false;
    el.addEventListener("input", () => { dirty = true; });
    const guarded = el.hasAttribute("data-live-unless-editing");
    setInterval(async () => {
      if (guarded && (dirty || el.contains(document.activeElement))) return;
      const response = await fetch(el.dataset.live, { credentials: "same-origin" }).catch(() => null);
      if (!response || !response.ok) return;
      const html = await response.text();
      if (html !== el.dataset.shown) { el.dataset.shown = html; el.innerHTML = html; }
    }, 2000);
  }
  for (const el of document.querySelectorAll("[data-reload-when]")) {
    setInterval(async () => {
      const response = await fetch(el.dataset.reloadWhen, { credentials: "same-origin" }).catch(() => null);
      if (response && response.ok && (await response.text()) !== el.dataset.version) location.reload();
    }, 2000);
  }
}

function confirmations() {
  document.addEventListener("submit", (ev) => {
    const message = ev.target.dataset && ev.target.dataset.confirm;
    if (message && !window.confirm(message)) ev.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  placeTimeline();
  drawGraph();
  live();
  confirmations();
});
