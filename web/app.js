// tsdbd's web UI: a query page (graph and table), a cardinality explorer and a status
// page, all from the Prometheus HTTP API tsdbd serves, plain JavaScript, no network
// beyond tsdbd itself. Each page marks its body with data-ready="<page>" once drawn
// (tests/integration/test_ui.py waits for it).
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

// Queries go as POST forms (long expressions); the status endpoints take GET only, as
// Prometheus' do.
async function api(path, params) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {}))
    (Array.isArray(v) ? v : [v]).forEach((x) => body.append(k, x));
  const r = path.startsWith("/api/v1/status/")
    ? await fetch(path + (params ? "?" + body : ""))
    : await fetch(path, {
      method: "POST", body,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
  const o = await r.json();
  if (o.status !== "success") throw new Error(o.errorType + ": " + o.error);
  return o;
}

function showError(id, err) {
  const e = $(id);
  e.hidden = !err;
  e.textContent = err ? String(err.message || err) : "";
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function fillTable(table, head, rows) {
  table.replaceChildren();
  if (head) {
    const tr = el("tr");
    head.forEach((h) => tr.appendChild(el("th", h)));
    table.appendChild(tr);
  }
  for (const row of rows) {
    const tr = el("tr");
    for (const c of row) {
      if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
      else tr.appendChild(el("td", String(c), typeof c === "number" ? "num" : ""));
    }
    table.appendChild(tr);
  }
}

function metricName(m) {
  const name = m.__name__ || "";
  const rest = Object.entries(m).filter(([k]) => k !== "__name__")
    .map(([k, v]) => k + '="' + v + '"');
  return name + "{" + rest.join(", ") + "}";
}

function ready(page) { document.body.dataset.ready = page; }

// ---- query page ----

function autoStep(range) { return Math.max(1, Math.round(range / 250)); }

function endTime() {
  const v = $("end").value;
  return v ? new Date(v).getTime() / 1000 : Date.now() / 1000;
}

async function runQuery() {
  const expr = $("expr").value.trim();
  const view = document.querySelector("input[name=view]:checked").value;
  // The address keeps the query (bookmarks, reloads) without a hashchange of its own.
  history.replaceState(null, "", "#query?" + new URLSearchParams({ expr, range: $("range").value, view }));
  if (!expr) return ready("query");
  showError("query-error", null);
  const end = endTime(), range = Number($("range").value);
  const t0 = performance.now();
  try {
    if (view === "table") {
      const o = await api("/api/v1/query", { query: expr, time: end });
      drawTable(o.data);
      $("query-info").textContent = info(o, t0);
    } else {
      const step = $("step").value || autoStep(range);
      const o = await api("/api/v1/query_range",
        { query: expr, start: end - range, end, step });
      drawGraph(o.data.result, end - range, end, Number(step));
      $("query-info").textContent = info(o, t0) + ", step " + step + "s";
    }
  } catch (err) {
    showError("query-error", err);
  }
  ready("query");
}

function info(o, t0) {
  const n = Array.isArray(o.data.result) ? o.data.result.length : 1;
  const w = (o.warnings || []).join("; ");
  return n + " series, " + Math.round(performance.now() - t0) + " ms" + (w ? " (" + w + ")" : "");
}

function drawTable(data) {
  $("graph-wrap").hidden = true;
  const t = $("table");
  t.hidden = false;
  let rows;
  if (data.resultType === "vector")
    rows = data.result.map((s) => [metricName(s.metric), s.value[1]]);
  else if (data.resultType === "matrix")
    rows = data.result.map((s) => [metricName(s.metric),
      s.values.map((v) => v[1] + " @" + v[0]).join("\n")]);
  else rows = [[data.resultType, String(data.result[1])]];
  fillTable(t, ["series", "value"], rows);
}

function niceTicks(lo, hi, n) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

function fmtValue(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toPrecision(3) + "G";
  if (a >= 1e6) return (v / 1e6).toPrecision(3) + "M";
  if (a >= 1e3) return (v / 1e3).toPrecision(3) + "k";
  return Number(v.toPrecision(3)).toString();
}

function drawGraph(series, start, end, step) {
  $("table").hidden = true;
  $("graph-wrap").hidden = false;
  const c = $("graph"), g = c.getContext("2d");
  const W = c.width, H = c.height, L = 60, R = 10, T = 10, B = 30;
  g.clearRect(0, 0, W, H);
  let lo = Infinity, hi = -Infinity, points = 0;
  for (const s of series)
    for (const [, v] of s.values) {
      const x = Number(v);
      if (isFinite(x)) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    }
  if (lo === Infinity) { lo = 0; hi = 1; }
  if (lo === hi) { lo -= 1; hi += 1; }
  const X = (t) => L + (t - start) / (end - start) * (W - L - R);
  const Y = (v) => H - B - (v - lo) / (hi - lo) * (H - T - B);
  g.strokeStyle = "#dde1e8";
  g.fillStyle = "#5a6476";
  g.font = "12px sans-serif";
  for (const v of niceTicks(lo, hi, 6)) {
    g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(W - R, Y(v)); g.stroke();
    g.fillText(fmtValue(v), 4, Y(v) + 4);
  }
  for (const t of niceTicks(start, end, 8)) {
    const d = new Date(t * 1000);
    const label = (end - start) > 2 * 86400 ? d.toISOString().slice(5, 16).replace("T", " ")
      : d.toISOString().slice(11, 19);
    g.fillText(label, X(t) - 24, H - 10);
  }
  const legend = $("legend");
  legend.replaceChildren();
  series.forEach((s, i) => {
    const col = COLORS[i % COLORS.length];
    g.strokeStyle = col;
    g.lineWidth = 1.5;
    g.beginPath();
    let prev = null;
    for (const [t, v] of s.values) {
      const x = Number(v);
      if (!isFinite(x)) { prev = null; continue; }
      // A gap longer than twice the step breaks the line, as Prometheus' graph does.
      if (prev !== null && t - prev <= 2 * step)
        g.lineTo(X(t), Y(x));
      else g.moveTo(X(t), Y(x));
      prev = t;
      points++;
    }
    g.stroke();
    const li = el("li");
    const sw = el("span");
    sw.style.background = col;
    li.appendChild(sw);
    li.appendChild(document.createTextNode(metricName(s.metric)));
    legend.appendChild(li);
  });
  c.dataset.series = String(series.length);
  c.dataset.points = String(points);
}

// ---- cardinality ----

async function cardinality() {
  showError("card-error", null);
  try {
    const o = await api("/api/v1/status/tsdb", { limit: 20 });
    const d = o.data;
    $("card-head").textContent = (d.headStats ? d.headStats.numSeries + " series, " +
      d.headStats.numLabelPairs + " label pairs" : "");
    fillTable($("card-metrics"), ["metric", "series"], d.seriesCountByMetricName.map((x) => {
      const a = el("a", x.name, "drill");
      a.onclick = () => drill(x.name);
      return [a, x.value];
    }));
    fillTable($("card-labels"), ["label", "values"],
      d.labelValueCountByLabelName.map((x) => [x.name, x.value]));
    fillTable($("card-pairs"), ["pair", "series"],
      d.seriesCountByLabelValuePair.map((x) => [x.name, x.value]));
  } catch (err) {
    showError("card-error", err);
  }
  ready("cardinality");
}

// A metric's labels and how many values each has among its series.
async function drill(metric) {
  const match = { "match[]": metric };
  const names = (await api("/api/v1/labels", match)).data.filter((n) => n !== "__name__");
  const rows = [];
  for (const n of names) {
    const vals = (await api("/api/v1/label/" + encodeURIComponent(n) + "/values", match)).data;
    rows.push([n, vals.length, vals.slice(0, 8).join(", ") + (vals.length > 8 ? ", ..." : "")]);
  }
  history.replaceState(null, "", "#cardinality?metric=" + encodeURIComponent(metric));
  $("card-drill").hidden = false;
  $("drill-title").textContent = metric;
  fillTable($("drill-table"), ["label", "values", "examples"], rows);
  document.body.dataset.drilled = metric;
}

// ---- status ----

function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const i = line.lastIndexOf(" ");
    const key = line.slice(0, i), v = Number(line.slice(i + 1));
    const name = key.split("{")[0];
    out[name] = (out[name] || 0) + v;
    out[key] = v;
  }
  return out;
}

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}

async function status() {
  showError("status-error", null);
  try {
    const [bi, rt, fl] = await Promise.all([
      api("/api/v1/status/buildinfo"), api("/api/v1/status/runtimeinfo"),
      api("/api/v1/status/flags")]);
    const up = Math.round((Date.now() - new Date(rt.data.startTime).getTime()) / 1000);
    fillTable($("status-build"), null, [
      ["version", bi.data.version], ["build date", bi.data.buildDate],
      ["started", rt.data.startTime], ["uptime", up + " s"],
      ["threads", rt.data.goroutineCount], ["CPUs", rt.data.GOMAXPROCS],
      ["working directory", rt.data.CWD], ["raw retention", rt.data.storageRetention]]);
    fillTable($("status-flags"), ["flag", "value"],
      Object.entries(fl.data).map(([k, v]) => ["--" + k, v]));
    const sto = (await api("/api/v1/status/storage")).data;
    const iso = (t) => new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");
    const tier = (p, k) => p.tiers ? p.tiers[k].rows + " rows, " + bytes(p.tiers[k].bytes) : "-";
    fillTable($("status-parts"), ["start", "end", "size", "5m tier", "1h tier", "state"],
      sto.partitions.map((p) => [iso(p.start), iso(p.end), bytes(p.bytes), tier(p, "5m"),
        tier(p, "1h"), (p.compacted ? "cold, compacted" : p.compacted === false ? "hot" : "not opened")
          + (p.open ? ", open" : "")]));
    const ha = (await api("/api/v1/status/ha")).data;
    $("status-ha-box").hidden = !ha.enabled;
    if (ha.enabled) {
      const dropped = (c) => ha.dropped.filter((d) => d.tenant === c.tenant && d.cluster === c.cluster)
        .map((d) => d.replica + ": " + d.samplesDropped).join(", ") || "-";
      fillTable($("status-ha"), ["tenant", "cluster", "elected replica", "elected at", "last write",
        "failovers", "samples dropped"],
        ha.clusters.map((c) => [c.tenant || "-", c.cluster, c.replica,
          new Date(c.electedAtMs).toISOString(), new Date(c.lastSeenMs).toISOString(),
          c.failovers, dropped(c)]));
    }
    const m1 = parseMetrics(await (await fetch("/metrics")).text());
    fillTable($("status-storage"), null, [
      ["series", m1.tsdb_series], ["partitions", m1.tsdb_partitions],
      ["partitions open", m1.tsdb_partitions_open],
      ["partition bytes (raw and tiers)", bytes(m1.tsdb_partition_bytes)],
      ["of which 5m / 1h tiers", bytes(sto.totals.tier_5m_bytes) + " / " + bytes(sto.totals.tier_1h_bytes)],
      ["index bytes", bytes(m1.tsdb_index_bytes)],
      ["WAL", bytes(m1.tsdb_wal_bytes) + " in " + m1.tsdb_wal_segments + " segments"],
      ["head chunks", m1.tsdb_head_chunks + " (" + bytes(m1.tsdb_head_chunk_bytes) + ")"],
      ["checkpoints", m1.tsdb_checkpoints_total],
      ["downsample builds", m1.tsdb_downsample_builds_total]]);
    ready("status");
    // Rates: a second sample a few seconds later.
    await new Promise((r) => setTimeout(r, 5000));
    const m2 = parseMetrics(await (await fetch("/metrics")).text());
    const rate = (k) => ((m2[k] || 0) - (m1[k] || 0)) / 5;
    const rows = Object.keys(m2).filter((k) => k.startsWith("tsdb_samples_ingested_total{"))
      .map((k) => [k.replace("tsdb_samples_ingested_total", "samples/s "), rate(k).toFixed(1)]);
    rows.push(["series created/s", rate("tsdb_series_created_total").toFixed(1)]);
    rows.push(["samples rejected/s", rate("tsdb_samples_rejected_total").toFixed(1)]);
    fillTable($("status-ingest"), null, rows);
    document.body.dataset.rates = "1";
  } catch (err) {
    showError("status-error", err);
    ready("status");
  }
}

// ---- routing ----

function route() {
  const [page, qs] = (location.hash.slice(1) || "query").split("?");
  for (const p of ["query", "cardinality", "status"]) {
    $("page-" + p).hidden = p !== page;
    $("nav-" + p).classList.toggle("active", p === page);
  }
  delete document.body.dataset.ready;
  if (page === "cardinality") {
    const metric = new URLSearchParams(qs || "").get("metric");
    return metric ? cardinality().then(() => drill(metric)).then(() => ready("cardinality"))
      : cardinality();
  }
  if (page === "status") return status();
  const q = new URLSearchParams(qs || "");
  if (q.has("expr") && q.get("expr") !== $("expr").value) {
    $("expr").value = q.get("expr");
    if (q.has("range")) $("range").value = q.get("range");
    if (q.get("view") === "table") document.querySelector("input[value=table]").checked = true;
    return runQuery();
  }
  ready("query");
}

$("query-form").addEventListener("submit", (e) => { e.preventDefault(); runQuery(); });
$("expr").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); runQuery(); }
});
window.addEventListener("hashchange", route);
route();
