// npr serve's page: upload images (or pick one from the folder table), show the score,
// the per-scale weights as bars, the residual maps side by side and the fused map.
"use strict";

const $ = (sel) => document.querySelector(sel);
let scales = [];

// The server answers API calls only with this header, which a page of another site
// cannot send (src/serve/guard.rs).
const API = { "X-NPR": "1" };
const api = (url, init = {}) => fetch(url, { ...init, headers: { ...API, ...(init.headers || {}) } });

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function scaleLabel(s) {
  return s >= 1 ? "1.0 · identity" : "NPR " + s;
}

async function health() {
  const r = await api("/api/health");
  const h = await r.json();
  scales = h.scales;
  $("#model").textContent =
    `checkpoint ${h.checkpoint} · fusion ${h.fusion} · scales ${h.scales.join(", ")} · ` +
    `${h.preprocessing} · up to ${(h.limits.max_pixels / 1e6).toFixed(1)} MP per image`;
  if (h.folder) loadFolder();
}

function weightBars(result) {
  const box = el("div", { class: "weights" }, el("div", { class: "muted" }, "weight per scale"));
  result.scales.forEach((s, i) => {
    const w = result.weights[i];
    const bar = el("div", { class: "fill" });
    bar.style.width = `${(100 * w).toFixed(1)}%`; // CSSOM: allowed by the page's CSP, unlike style=""
    box.append(el("div", { class: "row weight" },
      el("span", {}, scaleLabel(s)),
      el("div", { class: "track" }, bar),
      el("span", { class: "value" }, w.toFixed(3))));
  });
  return box;
}

function mapFigures(result) {
  const row = el("div", { class: "maps" });
  result.scales.forEach((s) => {
    const key = s >= 1 ? "identity" : "npr" + s;
    const caption = s >= 1 ? "1.0 · identity (the image)" : `residual at ${s}`;
    row.append(el("figure", {}, el("img", { src: result.maps[key], alt: caption }), el("figcaption", {}, caption)));
  });
  row.append(el("figure", { class: "fused" },
    el("img", { src: result.maps.fused, alt: "fused map" }),
    el("figcaption", {}, "fused: what the backbone sees")));
  return row;
}

function card(name) {
  const c = el("div", { class: "card" }, el("div", { class: "name" }, name), el("p", { class: "muted" }, "scoring…"));
  $("#results").prepend(c);
  return c;
}

function fill(c, name, result) {
  c.replaceChildren();
  const call = el("span", { class: `call ${result.pred}` }, result.pred);
  const left = el("div", {},
    el("div", { class: "name" }, name),
    el("div", { class: "score", "data-score": result.score }, result.score.toFixed(4)),
    el("div", {}, "fake probability ", call),
    el("div", { class: "muted" }, `logit ${result.logit.toFixed(4)}`));
  c.append(el("div", { class: "top" }, left, weightBars(result)));
  c.append(mapFigures(result));
  c.append(el("div", { class: "note" },
    `Residuals share one stretch: ±${result.stretch.residual_limit.toFixed(2)} grey levels ` +
    `(the ${result.stretch.percentile}th percentile of |residual| over all scales) is black/white, mid-grey is 0. ` +
    `The fused map has its own stretch (±${result.stretch.fused_limit.toFixed(3)}).`));
  c.classList.add("done");
}

function failed(c, name, message) {
  c.replaceChildren(el("div", { class: "name" }, name), el("p", { class: "error" }, message));
  c.classList.add("done", "failed");
}

async function show(name, request) {
  const c = card(name);
  try {
    const r = await request();
    const body = await r.json();
    if (!r.ok) failed(c, name, `${r.status}: ${body.error}`); else fill(c, name, body);
  } catch (e) {
    failed(c, name, String(e));
  }
  return c;
}

async function upload(files) {
  for (const f of files) {
    await show(f.name, () => api(`/api/predict?maps=true&name=${encodeURIComponent(f.name)}`,
      { method: "POST", body: f, headers: { "Content-Type": "application/octet-stream" } }));
  }
}

$("#files").addEventListener("change", (e) => upload([...e.target.files]));
const drop = $("#drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  upload([...e.dataTransfer.files]);
});

// Folder mode: a sortable table; scores fill in as the model answers.
let rows = [];
let sortKey = "path", sortAsc = true;

function columns() {
  return [["path", "path"], ["label", "label"], ["score", "score"], ["pred", "call"]]
    .concat(scales.map((s, i) => ["w" + i, "w@" + s]));
}

function renderTable() {
  const head = $("#folder-head");
  head.replaceChildren();
  for (const [key, title] of columns()) {
    const th = el("th", {}, title);
    if (key === sortKey) th.className = "sorted" + (sortAsc ? " asc" : "");
    th.addEventListener("click", () => {
      sortAsc = key === sortKey ? !sortAsc : key === "path" || key === "label";
      sortKey = key;
      renderTable();
    });
    head.append(th);
  }
  const val = (r) => sortKey.startsWith("w") && sortKey !== "path" ? (r.weights ? r.weights[+sortKey.slice(1)] : -1) : r[sortKey];
  const sorted = [...rows].sort((a, b) => {
    const x = val(a) ?? "", y = val(b) ?? "";
    return (x < y ? -1 : x > y ? 1 : 0) * (sortAsc ? 1 : -1);
  });
  const body = $("#folder-table tbody");
  body.replaceChildren();
  for (const r of sorted) {
    const tr = el("tr", {}, el("td", {}, r.path), el("td", {}, r.label ?? ""),
      el("td", { class: "num" }, r.score === undefined ? "…" : r.score.toFixed(4)),
      el("td", {}, r.error ? "error" : r.pred ?? ""),
      ...scales.map((_, i) => el("td", { class: "num" }, r.weights ? r.weights[i].toFixed(3) : "")));
    if (r.error) tr.title = r.error;
    tr.addEventListener("click", () => {
      show(r.path, () => api(`/api/folder/predict?maps=true&path=${encodeURIComponent(r.path)}`));
      window.scrollTo({ top: 0, behavior: "smooth" });
    });
    body.append(tr);
  }
}

async function loadFolder() {
  $("#folder").hidden = false;
  const r = await api("/api/folder");
  const listing = await r.json();
  $("#folder-root").textContent = listing.root;
  rows = listing.images.map((i) => ({ path: i.path, label: i.label }));
  const extra = listing.not_listed ? ` (${listing.not_listed} more not listed)` : "";
  renderTable();
  let done = 0;
  const status = () => { $("#folder-status").textContent = `${done} of ${rows.length} scored${extra}`; };
  status();
  // A few requests at a time: the server scores in small batches anyway.
  let next = 0;
  async function lane() {
    while (next < rows.length) {
      const row = rows[next++];
      try {
        const res = await api(`/api/folder/predict?path=${encodeURIComponent(row.path)}`);
        const body = await res.json();
        if (res.ok) Object.assign(row, { score: body.score, pred: body.pred, weights: body.weights });
        else row.error = body.error;
      } catch (e) { row.error = String(e); }
      done++;
      status();
      if (done % 16 === 0 || done === rows.length) renderTable();
    }
  }
  await Promise.all([lane(), lane(), lane(), lane()]);
  renderTable();
}

health();
