// The status page served at `/` by the ops endpoint: one dependency-free HTML document with inline CSS
// and JS that polls /api/status every 2 s and draws the buffer history as inline SVG. It is a string
// module so `tsc` output carries it (no asset copying). Every figure from the gateway is set with
// textContent (device ids, rejection details and the ways in's health details are untrusted input).

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iotgw status</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --fg: #1b1f24; --muted: #5f6b7a; --line: #d9dee5;
          --ok: #1a7f37; --warn: #b35900; --bad: #c62828; --idle: #6b7280; --depth: #2563eb; --age: #b35900; --rate: #1a7f37; }
  @media (prefers-color-scheme: dark) {
    :root { --bg: #111418; --card: #1b2027; --fg: #e6e9ee; --muted: #9aa5b4; --line: #2c333d; --depth: #60a5fa; --age: #f59e0b; --rate: #4ade80; }
  }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1rem; padding: .75rem 1rem; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.15rem; margin: 0; }
  header .meta { color: var(--muted); font-size: .85rem; }
  #conn { margin-left: auto; font-size: .85rem; color: var(--muted); }
  #conn.stale { color: var(--bad); font-weight: 600; }
  main { padding: .75rem; display: grid; gap: .75rem; max-width: 1200px; margin: 0 auto; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .75rem; }
  .card, section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .6rem .75rem; min-width: 0; }
  .card .label { color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
  .card .value { font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
  .card .sub { color: var(--muted); font-size: .8rem; font-variant-numeric: tabular-nums; }
  .pill { display: inline-block; padding: .05rem .6rem; border-radius: 999px; color: #fff; font-size: 1.1rem; }
  .pill.up { background: var(--ok); } .pill.buffering { background: var(--warn); } .pill.starting, .pill.unknown { background: var(--idle); }
  section h2 { font-size: .95rem; margin: 0 0 .4rem; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: .75rem; }
  .chart svg { width: 100%; height: 110px; display: block; }
  .chart .axis { color: var(--muted); font-size: .75rem; display: flex; justify-content: space-between; }
  .tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: .75rem; }
  .scroll { overflow-x: auto; }
  table { width: 100%; border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: .2rem .4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 500; }
  td.num, th.num { text-align: right; }
  td.detail { overflow-wrap: anywhere; }
  td.state { font-weight: 600; white-space: nowrap; }
  td.state::before { content: "● "; }
  td.state.ok { color: var(--ok); } td.state.degraded { color: var(--warn); } td.state.down { color: var(--bad); } td.state.unknown { color: var(--idle); }
  .empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body>
<header>
  <h1>iotgw <span id="gateway-id">…</span></h1>
  <span class="meta">version <span id="version">…</span> · up <span id="uptime">…</span></span>
  <span id="conn">connecting…</span>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Kafka link</div><div class="value"><span id="kafka-state" class="pill unknown">…</span></div>
      <div class="sub"><span id="kafka-rate">0</span> records/s sent · <span id="kafka-errors">0</span> send errors</div></div>
    <div class="card"><div class="label">Buffer depth</div><div class="value" id="buffer-depth">…</div>
      <div class="sub"><span id="buffer-bytes">…</span> · <span id="buffer-fill">…</span> of the bound</div></div>
    <div class="card"><div class="label">Oldest buffered</div><div class="value" id="buffer-age">…</div>
      <div class="sub">dead letters <span id="dead-letters">0</span> · dropped <span id="dropped">0</span></div></div>
    <div class="card"><div class="label">Ingress</div><div class="value"><span id="ingress-rate">…</span> /s</div>
      <div class="sub">accepted <span id="ingress-accepted">0</span> · rejected <span id="ingress-rejected">0</span></div></div>
    <div class="card"><div class="label">Devices</div><div class="value" id="devices-connected">…</div>
      <div class="sub">connected · <span id="devices-seen">0</span> seen in 10 min</div></div>
  </div>
  <div class="charts">
    <section class="chart"><h2>Buffer depth (records)</h2><svg id="chart-depth" viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label="buffer depth history"></svg>
      <div class="axis"><span class="from">-10 min</span><span class="max"></span><span>now</span></div></section>
    <section class="chart"><h2>Oldest record age (s)</h2><svg id="chart-age" viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label="oldest record age history"></svg>
      <div class="axis"><span class="from">-10 min</span><span class="max"></span><span>now</span></div></section>
    <section class="chart"><h2>Ingress (records/s)</h2><svg id="chart-rate" viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label="ingress rate history"></svg>
      <div class="axis"><span class="from">-10 min</span><span class="max"></span><span>now</span></div></section>
  </div>
  <div class="tables">
    <section><h2>Ways in</h2><div class="scroll"><table id="links">
      <thead><tr><th>link</th><th>state</th><th>detail</th></tr></thead><tbody></tbody></table></div></section>
    <section><h2>Ingress by source</h2><div class="scroll"><table id="sources">
      <thead><tr><th>source</th><th class="num">records/s</th><th class="num">accepted</th><th class="num">rejected</th></tr></thead><tbody></tbody></table></div></section>
    <section><h2>Recently seen devices</h2><div class="scroll"><table id="devices">
      <thead><tr><th>device</th><th>source</th><th class="num">last seen</th><th class="num">records</th></tr></thead><tbody></tbody></table></div></section>
    <section><h2>Commands to devices</h2><div class="scroll"><table id="commands">
      <thead><tr><th>commands</th><th class="num">count</th></tr></thead><tbody></tbody></table></div></section>
    <section id="lorawan-radio" hidden><h2>LoRaWAN devices by data rate and TX power</h2><div class="scroll"><table id="lorawan-rates">
      <thead><tr><th>data rate</th><th class="num">devices</th><th>TX power index</th><th class="num">devices</th></tr></thead><tbody></tbody></table></div></section>
    <section id="lorawan-adr" hidden><h2>Recent ADR changes</h2><div class="scroll"><table id="adr-changes">
      <thead><tr><th>time</th><th>device</th><th>data rate</th><th>TX power index</th><th class="num">NbTrans</th></tr></thead><tbody></tbody></table></div></section>
    <section><h2>Recent rejections</h2><div class="scroll"><table id="rejections">
      <thead><tr><th>time</th><th>source</th><th>reason</th><th>detail</th></tr></thead><tbody></tbody></table></div></section>
  </div>
</main>
<script>
"use strict";
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const num = (n) => fmt.format(Math.round(n));
const rate = (n) => (n >= 100 ? num(n) : (Math.round(n * 10) / 10).toString());
function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}
function setText(id, text) { const el = $(id); if (el.textContent !== text) el.textContent = text; }
function row(tbody, cells) {
  const tr = document.createElement("tr");
  for (const [text, cls] of cells) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); }
  tbody.appendChild(tr);
}
function fill(tableId, rows, emptyText, columns) {
  const tbody = $(tableId).tBodies[0];
  tbody.replaceChildren();
  if (rows.length === 0) { row(tbody, [[emptyText, "empty"]]); tbody.rows[0].cells[0].colSpan = columns; return; }
  for (const cells of rows) row(tbody, cells);
}
function chart(id, samples, value, color) {
  const svg = $(id);
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const values = samples.map(value);
  const max = Math.max(1, ...values);
  const axis = svg.parentElement.querySelector(".max");
  axis.textContent = "max " + num(max);
  if (samples.length > 0) {
    const span = Math.max(1, samples[samples.length - 1].atMs - samples[0].atMs);
    const from = svg.parentElement.querySelector(".from");
    from.textContent = "-" + duration(span / 1000);
  }
  if (values.length < 2) return;
  const t0 = samples[0].atMs, span = Math.max(1, samples[samples.length - 1].atMs - t0);
  const points = samples.map((s, i) => ((s.atMs - t0) / span * 300).toFixed(1) + "," + (98 - values[i] / max * 94).toFixed(1));
  const area = document.createElementNS(ns, "polygon");
  area.setAttribute("points", "0,100 " + points.join(" ") + " 300,100");
  area.setAttribute("fill", color); area.setAttribute("fill-opacity", "0.15");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke", color); line.setAttribute("stroke-width", "1.5");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(area, line);
}
function render(s) {
  const css = getComputedStyle(document.documentElement);
  setText("gateway-id", s.gatewayId);
  setText("version", s.version);
  setText("uptime", duration(s.uptimeSeconds));
  const kafka = $("kafka-state");
  kafka.className = "pill " + s.kafka.state;
  setText("kafka-state", s.kafka.state);
  setText("kafka-rate", rate(s.kafka.sentPerSecond));
  setText("kafka-errors", num(s.kafka.sendErrors));
  setText("buffer-depth", num(s.buffer.depthRecords));
  setText("buffer-bytes", bytes(s.buffer.depthBytes));
  const fillPct = Math.max(s.buffer.depthRecords / s.buffer.maxRecords, s.buffer.depthBytes / s.buffer.maxBytes) * 100;
  setText("buffer-fill", (fillPct < 10 ? fillPct.toFixed(2) : fillPct.toFixed(0)) + " %");
  setText("buffer-age", s.buffer.depthRecords === 0 ? "empty" : duration(s.buffer.oldestAgeSeconds));
  setText("dead-letters", num(s.buffer.deadLetters));
  setText("dropped", num(s.buffer.droppedRecords));
  setText("ingress-rate", rate(s.ingress.perSecond));
  setText("ingress-accepted", num(s.ingress.sources.reduce((n, x) => n + x.accepted, 0)));
  setText("ingress-rejected", num(s.ingress.sources.reduce((n, x) => n + x.rejected, 0)));
  setText("devices-connected", num(s.devices.connected));
  setText("devices-seen", num(s.devices.seenRecently));
  const samples = s.history.samples;
  chart("chart-depth", samples, (x) => x.depthRecords, css.getPropertyValue("--depth").trim());
  chart("chart-age", samples, (x) => x.oldestAgeSeconds, css.getPropertyValue("--age").trim());
  chart("chart-rate", samples, (x) => Object.values(x.ingressPerSecond).reduce((a, b) => a + b, 0), css.getPropertyValue("--rate").trim());
  fill("links", s.links.map((l) => [[l.name], [l.status, "state " + (["ok", "degraded", "down"].includes(l.status) ? l.status : "unknown")], [l.detail ?? "", "detail"]]), "none enabled", 3);
  fill("sources", s.ingress.sources.map((x) => [[x.source], [rate(x.perSecond), "num"], [num(x.accepted), "num"], [num(x.rejected), "num"]]), "no records yet", 4);
  fill("devices", s.devices.recent.slice(0, 20).map((d) => [[d.id], [d.source], [duration((s.nowMs - d.lastSeenMs) / 1000) + " ago", "num"], [num(d.count), "num"]]), "no devices yet", 4);
  const commands = s.commands ?? { waiting: {}, byStatus: {} };
  fill("commands", [...Object.entries(commands.waiting).map(([k, v]) => ["waiting, " + k, v]), ...Object.entries(commands.byStatus).map(([k, v]) => [k, v])]
    .map(([k, v]) => [[k], [num(v), "num"]]), "commands off, or none yet", 2);
  const radio = s.lorawan;
  $("lorawan-radio").hidden = radio == null;
  $("lorawan-adr").hidden = radio == null;
  if (radio != null) {
    const rates = Object.entries(radio.byDataRate).sort((a, b) => Number(a[0]) - Number(b[0]));
    const powers = Object.entries(radio.byTxPowerIndex).sort((a, b) => Number(a[0]) - Number(b[0]));
    const rows = [];
    for (let i = 0; i < Math.max(rates.length, powers.length); i++) {
      const r = rates[i], p = powers[i];
      rows.push([[r ? "DR" + r[0] : ""], [r ? num(r[1]) : "", "num"], [p ? String(p[0]) : ""], [p ? num(p[1]) : "", "num"]]);
    }
    fill("lorawan-rates", rows, "no uplinks yet (" + radio.region + ", " + num(radio.devices) + " devices)", 4);
    fill("adr-changes", radio.recentAdrChanges.slice(0, 20).map((c) => [[new Date(c.atMs).toLocaleTimeString()], [c.devEui],
      [(c.from.dataRate == null ? "?" : "DR" + c.from.dataRate) + " → DR" + c.to.dataRate], [c.from.txPowerIndex + " → " + c.to.txPowerIndex], [c.from.nbTrans + " → " + c.to.nbTrans, "num"]]), "none yet", 5);
  }
  fill("rejections", s.rejections.slice(0, 50).map((r) => [[new Date(r.atMs).toLocaleTimeString()], [r.source], [r.reason], [r.detail, "detail"]]), "none", 4);
}
let lastOk = 0;
async function poll() {
  try {
    const response = await fetch("api/status", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    lastOk = Date.now();
    const conn = $("conn"); conn.className = ""; conn.textContent = "live · " + new Date().toLocaleTimeString();
  } catch (error) {
    const conn = $("conn"); conn.className = "stale";
    conn.textContent = "gateway unreachable (" + error.message + ")" + (lastOk ? " · last update " + new Date(lastOk).toLocaleTimeString() : "");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}
poll();
</script>
</body>
</html>
`;
