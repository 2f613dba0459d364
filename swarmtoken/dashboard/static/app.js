// The swarm dashboard: renders the state the server embeds in the page, then every state
// the server sends over /api/events (server-sent events); polls /api/state where
// EventSource is missing. No library, nothing fetched from elsewhere.
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
const SVG = "http://www.w3.org/2000/svg";
let updates = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c === null || c === undefined ? "" : c);
  return node;
}
function text(id, value) { document.getElementById(id).textContent = value; }
function short(a) { return a ? a.slice(0, 8) + ".." + a.slice(-4) : "-"; }
function fmt(x, digits) { return x === null || x === undefined ? "-" : Number(x).toFixed(digits); }
function fill(tbody, rows) { tbody.replaceChildren(...rows); }

function svgEl(tag, attrs, content) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (content !== undefined) node.textContent = content;
  return node;
}

// A line chart: series = [{name, color, points: [[x, y]], dots}], drawn into an <svg>.
function chart(svg, series, yLabel) {
  const W = 560, H = 260, L = 48, R = 110, T = 22, B = 30;
  const pts = series.flatMap(s => s.points);
  svg.replaceChildren();
  if (!pts.length) { svg.append(svgEl("text", {x: W / 2 - 40, y: H / 2}, "no settled epoch yet")); return; }
  const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  svg.append(svgEl("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999"}),
             svgEl("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#999"}));
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    svg.append(svgEl("text", {x: 4, y: sy(y) + 4}, y.toFixed(y1 - y0 < 0.1 ? 3 : 2)));
  }
  for (let x = x0; x <= x1; x++) svg.append(svgEl("text", {x: sx(x) - 3, y: H - B + 14}, String(x)));
  svg.append(svgEl("text", {x: (W - R) / 2, y: H - 2}, "epoch"), svgEl("text", {x: 4, y: 11}, yLabel));
  series.forEach((s, i) => {
    if (!s.points.length) return;
    if (!s.dots) svg.append(svgEl("polyline", {points: s.points.map(p => sx(p[0]) + "," + sy(p[1])).join(" "),
                                              fill: "none", stroke: s.color, "stroke-width": 2}));
    for (const p of s.points) svg.append(svgEl("circle", {cx: sx(p[0]), cy: sy(p[1]), r: s.dots ? 2.5 : 3.5,
                                                         fill: s.color, opacity: s.dots ? 0.6 : 1}));
    svg.append(svgEl("rect", {x: W - R + 8, y: T + i * 16, width: 10, height: 10, fill: s.color}),
               svgEl("text", {x: W - R + 22, y: T + i * 16 + 9}, s.name));
  });
}

function render(state) {
  if (!state) { text("live", "waiting for the chain"); return; }
  updates += 1;
  document.body.dataset.updates = String(updates);
  document.body.dataset.block = String(state.block);
  text("epoch", state.epoch);
  text("phase", state.phase);
  text("epochs-settled", state.epochs_settled);
  text("max-epochs", state.max_epochs ? " of " + state.max_epochs : "");
  text("total-paid", state.total_paid);
  text("block", state.block);
  text("swarm-address", "swarm contract " + state.swarm + (state.finished ? " (finished)" : ""));
  const banner = document.getElementById("banner");
  banner.hidden = !state.chain_error;
  banner.textContent = state.chain_error ? "chain unreachable, showing the last state read: " + state.chain_error : "";
  const color = {}, labels = {};
  state.nodes.forEach(n => { labels[n.address] = n.label; });
  state.nodes.forEach((n, i) => { color[n.label] = COLORS[i % COLORS.length]; });

  fill(document.querySelector("#members tbody"), state.nodes.map(n => el("tr", {"data-node": n.address},
    el("td", {}, n.label), el("td", {title: n.address}, short(n.address)),
    el("td", {class: "status-" + n.status}, n.status), el("td", {class: "num"}, n.strikes ?? "-"),
    el("td", {class: "num"}, fmt(n.smoothed, 5)), el("td", {class: "num"}, n.allowance ?? "-"),
    el("td", {class: "num"}, n.epochs_settled_in),
    el("td", {class: "num earned", "data-node": n.address}, n.earned), el("td", {class: "num"}, n.forfeited),
    el("td", {class: "num"}, n.claimed))));

  const settled = state.epochs.filter(e => e.state === "settled");
  const accuracy = [{name: "median", color: "#111", points: settled.filter(e => e.metric !== null)
    .map(e => [e.epoch, e.metric])}];
  for (const n of state.nodes) accuracy.push({name: n.label, color: color[n.label], dots: true,
    points: settled.filter(e => n.label in e.reports).map(e => [e.epoch, e.reports[n.label]])});
  chart(document.getElementById("accuracy-chart"), accuracy, "metric");
  const cumulative = state.nodes.map(n => {
    let total = 0;
    return {name: n.label, color: color[n.label], points: state.epochs.filter(e => e.state !== "open").map(e => {
      const o = e.outcomes.find(o => o.node === n.address);
      total += o ? Number(o.payout) : 0;
      return [e.epoch, total];
    })};
  });
  chart(document.getElementById("payout-chart"), cumulative, "tokens");

  document.querySelector("#epochs thead").replaceChildren(el("tr", {}, el("th", {}, "epoch"), el("th", {}, "state"),
    el("th", {}, "leader"), el("th", {}, "commits"), el("th", {class: "num"}, "median metric"),
    ...state.nodes.map(n => el("th", {}, n.label))));
  fill(document.querySelector("#epochs tbody"), state.epochs.slice().reverse().map(e => el("tr", {"data-epoch": e.epoch},
    el("td", {}, e.epoch), el("td", {}, e.state + (e.quorate === false ? " (not quorate)" : "")),
    el("td", {}, e.leader_label + (e.skipped.length ? " (skipped " + e.skipped.join(", ") + ")" : "")),
    el("td", {class: "num"}, e.commits), el("td", {class: "num"}, fmt(e.metric, 4)),
    ...state.nodes.map(n => {
      const o = e.outcomes.find(o => o.node === n.address);
      if (!o) return el("td", {}, "-");
      const mark = o.forfeit ? "forfeit" : o.standing ? "" : "partial";
      return el("td", {class: mark, title: o.forfeit || ""}, o.payout + (mark ? " " + mark : ""),
        el("br"), el("span", {class: "muted"}, fmt(o.score, 4) + " / " + fmt(o.smoothed, 4)));
    }))));

  fill(document.getElementById("disputes"), state.disputes.length ? state.disputes.map(d =>
    el("li", {class: "wrap"}, "epoch " + d.epoch + " (leader " + d.leader + "): " + d.what)) : [el("li", {class: "muted"}, "none")]);
  fill(document.getElementById("forfeits"), state.forfeits.length ? state.forfeits.map(f =>
    el("li", {}, "epoch " + f.epoch + ", " + f.label + ": " + f.reason)) : [el("li", {class: "muted"}, "none")]);
  fill(document.querySelector("#membership tbody"), state.membership.map(m => el("tr", {},
    el("td", {}, m.block), el("td", {class: "status-" + m.event}, m.event), el("td", {title: m.account}, m.label),
    el("td", {}, m.epoch ?? "-"), el("td", {}, m.strikes ?? "-"), el("td", {class: "wrap"}, m.reason))));
  fill(document.querySelector("#ledger tbody"), state.ledger.map(r => el("tr", {},
    el("td", {}, r.epoch), el("td", {title: r.node}, r.label), el("td", {class: "num"}, r.samples),
    el("td", {title: r.leader}, labels[r.leader] || short(r.leader)), el("td", {class: "num"}, fmt(r.score, 5)),
    el("td", {class: "num"}, fmt(r.smoothed_score, 5)), el("td", {}, r.standing ? "yes" : "no"),
    el("td", {class: "num"}, Number(r.payout_tokens).toFixed(2)), el("td", {}, r.forfeit),
    el("td", {class: "num"}, fmt(r.median_metric, 4)))));
}

function live(ok, label) {
  const node = document.getElementById("live");
  node.className = "pill " + (ok ? "ok" : "down");
  node.textContent = label;
}

function connect() {
  if (!window.EventSource) {  // polling fallback
    setInterval(() => fetch("/api/state").then(r => r.json()).then(s => { render(s); live(true, "polling"); })
      .catch(() => live(false, "server unreachable")), 1000);
    return;
  }
  const source = new EventSource("/api/events");
  source.onopen = () => live(true, "live");
  source.onmessage = event => { render(JSON.parse(event.data)); live(true, "live"); };
  source.onerror = () => live(false, "reconnecting");  // EventSource retries by itself
}

render(JSON.parse(document.getElementById("initial-state").textContent));
connect();
