// fleetbid live map: the GeoJSON base layer on a canvas, and the fleet's announcements
// (server-sent events) drawn on top. Plain JS, no library, no network beyond this server.
"use strict";

const ENDED = new Set(["closed", "unserved", "picked_up"]);
const WAITING = new Set(["open", "round", "waiting", "assigned"]);  // passenger not picked up
const BIDDING = new Set(["open", "round", "waiting"]);
const COLOURS = { idle: "#2e9d4f", to_pickup: "#f08c00", with_passenger: "#1c64d6",
                  repositioning: "#8e44ad" };
const CLUSTER_FILL = ["#4c6ef5", "#f59f00", "#37b24d", "#e64980", "#15aabf", "#ae3ec9",
  "#fd7e14", "#82c91e"];
const FIELDS = ["cluster", "pickup", "dropoff", "bidders", "deadline", "round", "winner",
  "price", "reason", "speed"];
const ROWS = 40;

const fleet = {
  epoch: 0, speed: 1, nodes: {}, geo: null,
  auctions: new Map(), vehicles: new Map(), stats: new Map(),
  sentHistory: [],  // [wall s, total messages sent] for messages/s
  frames: 0,
};

// --- merging announcements (as fleetbid/service/board.py does) -------------------------------

function mergeAuction(news) {
  let row = fleet.auctions.get(news.auction_id);
  if (!row) {
    row = { auction_id: news.auction_id, state: "open", best_bid: null, opened_wall: null,
      assigned_wall: null, at: 0, wall: 0 };
    fleet.auctions.set(news.auction_id, row);
  }
  for (const f of FIELDS) if (news[f] !== null && news[f] !== undefined) row[f] = news[f];
  if (news.best_bid != null && (row.best_bid == null || news.best_bid > row.best_bid)) {
    row.best_bid = news.best_bid;
  }
  if (news.state === "open") row.opened_wall = news.wall;
  if (news.state === "assigned") row.assigned_wall = news.wall;
  const late = row.state === "assigned" && BIDDING.has(news.state);
  if ((!ENDED.has(row.state) || news.state === "picked_up") && !late) row.state = news.state;
  row.at = news.at; row.wall = news.wall;
}

function onNews(news) {
  if (news.kind === "auction") mergeAuction(news);
  else if (news.kind === "vehicle") {
    const old = fleet.vehicles.get(news.vehicle);
    if (!old || news.at >= old.at) fleet.vehicles.set(news.vehicle, news);
  } else if (news.kind === "stats") {
    fleet.stats.set(news.process, news);
    let total = 0;
    for (const s of fleet.stats.values()) total += s.sent;
    fleet.sentHistory.push([news.wall, total]);
    while (fleet.sentHistory.length > 2 && news.wall - fleet.sentHistory[0][0] > 5) {
      fleet.sentHistory.shift();
    }
  }
}

function onSnapshot(snap) {
  for (const row of snap.auctions.slice().reverse()) fleet.auctions.set(row.auction_id, row);
  for (const v of snap.vehicles) onNews(v);
  for (const s of snap.stats) onNews(s);
}

// --- geometry --------------------------------------------------------------------------------

const canvas = document.getElementById("map");
const ctx = canvas.getContext("2d");
let view = null;  // {scale, ox, oy, kx, minLon, maxLat} for lon/lat -> pixels
let base = null;  // the base layer, drawn once per size

function fit() {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = canvas.clientWidth * dpr;
  canvas.height = canvas.clientHeight * dpr;
  const ll = Object.values(fleet.nodes);
  if (!ll.length) return;
  let minLon = Infinity, maxLon = -Infinity, minLat = Infinity, maxLat = -Infinity;
  for (const [lon, lat] of ll) {
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
    minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
  }
  const kx = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const pad = 20 * dpr;
  const w = Math.max(1e-9, (maxLon - minLon) * kx), h = Math.max(1e-9, maxLat - minLat);
  const scale = Math.min((canvas.width - 2 * pad) / w, (canvas.height - 2 * pad) / h);
  view = { scale, kx, minLon, maxLat, dpr,
    ox: (canvas.width - w * scale) / 2, oy: (canvas.height - h * scale) / 2 };
  drawBase();
}

function px(lon, lat) {
  return [view.ox + (lon - view.minLon) * view.kx * view.scale,
    view.oy + (view.maxLat - lat) * view.scale];
}

function nodePx(node) {
  const ll = fleet.nodes[node];
  return ll ? px(ll[0], ll[1]) : null;
}

function tracePath(c, coords) {
  coords.forEach(([lon, lat], i) => {
    const [x, y] = px(lon, lat);
    if (i === 0) c.moveTo(x, y); else c.lineTo(x, y);
  });
}

function drawBase() {
  base = document.createElement("canvas");
  base.width = canvas.width; base.height = canvas.height;
  const c = base.getContext("2d");
  c.lineJoin = "round";
  for (const f of fleet.geo.features) {
    const g = f.geometry;
    if (f.properties.layer === "cluster") {
      const polys = g.type === "Polygon" ? [g.coordinates] : g.coordinates;
      c.beginPath();
      for (const poly of polys) for (const ring of poly) { tracePath(c, ring); c.closePath(); }
      const colour = CLUSTER_FILL[f.properties.cluster % CLUSTER_FILL.length];
      c.fillStyle = colour + "1f"; c.fill();
      c.strokeStyle = colour + "80"; c.lineWidth = 1.5 * view.dpr; c.stroke();
    } else {
      c.beginPath(); tracePath(c, g.coordinates);
      c.strokeStyle = "#b9b9b4"; c.lineWidth = 1.2 * view.dpr; c.stroke();
    }
  }
}

// --- drawing ---------------------------------------------------------------------------------

function simNow() { return (Date.now() / 1000 - fleet.epoch) * fleet.speed; }

function vehiclePx(v, now) {
  const a = nodePx(v.node);
  if (!a || v.state === "idle" || !v.target) return a;
  const b = nodePx(v.target);
  if (!b) return a;
  const t = v.duration > 0 ? Math.min(1, Math.max(0, (now - v.start) / v.duration)) : 1;
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
}

const positions = new Map();  // vehicle -> its pixel position at the last frame

function draw() {
  fleet.frames += 1;
  if (view && base) {
    const d = view.dpr, now = simNow();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(base, 0, 0);
    let waiting = 0, open = 0, moving = 0;
    for (const row of fleet.auctions.values()) {
      if (!WAITING.has(row.state) || !row.pickup) continue;
      const p = nodePx(row.pickup);
      if (!p) continue;
      waiting += 1;
      ctx.fillStyle = "#d6336c";
      ctx.fillRect(p[0] - 4 * d, p[1] - 4 * d, 8 * d, 8 * d);
      if (BIDDING.has(row.state)) {
        open += 1;
        const pulse = 9 + 4 * Math.sin(Date.now() / 180);
        ctx.beginPath(); ctx.arc(p[0], p[1], pulse * d, 0, 2 * Math.PI);
        ctx.strokeStyle = "#d6336c"; ctx.lineWidth = 2 * d; ctx.stroke();
      }
    }
    for (const v of fleet.vehicles.values()) {
      const p = vehiclePx(v, now);
      if (!p) continue;
      if (v.state !== "idle") moving += 1;
      positions.set(v.vehicle, p);
      ctx.beginPath(); ctx.arc(p[0], p[1], 4.5 * d, 0, 2 * Math.PI);
      ctx.fillStyle = COLOURS[v.state] || "#555"; ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 1 * d; ctx.stroke();
    }
    Object.assign(canvas.dataset, { vehicles: fleet.vehicles.size, moving, waiting, open,
      frames: fleet.frames });
  }
  requestAnimationFrame(draw);
}

// --- side panel ------------------------------------------------------------------------------

function short(jid) { return jid ? jid.split("@")[0] : ""; }

function timeLeft(row) {
  if (row.deadline == null || ENDED.has(row.state) || row.state === "assigned") return null;
  const now = row.at + (Date.now() / 1000 - row.wall) * (row.speed || 1);
  return Math.max(0, row.deadline - now);
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function counters() {
  const rows = [...fleet.auctions.values()];
  const served = rows.filter((r) => r.state === "picked_up").length;
  const waiting = rows.filter((r) => WAITING.has(r.state)).length;
  const lat = rows.filter((r) => r.opened_wall != null && r.assigned_wall != null)
    .map((r) => (r.assigned_wall - r.opened_wall) * 1000).sort((a, b) => a - b);
  const p50 = lat.length ? lat[Math.floor((lat.length - 1) / 2)] : null;
  const h = fleet.sentHistory;
  let rate = null;
  if (h.length >= 2 && h[h.length - 1][0] > h[0][0]) {
    rate = (h[h.length - 1][1] - h[0][1]) / (h[h.length - 1][0] - h[0][0]);
  }
  document.getElementById("served").textContent = served;
  document.getElementById("waiting").textContent = waiting;
  document.getElementById("p50").textContent = p50 == null ? "–" : `${p50.toFixed(0)} ms`;
  document.getElementById("rate").textContent = rate == null ? "–" : rate.toFixed(0);
  document.getElementById("vehicles").textContent = fleet.vehicles.size;
  document.getElementById("auction-count").textContent = fleet.auctions.size;
}

function table() {
  const body = document.querySelector("#auctions tbody");
  const rows = [...fleet.auctions.values()].slice(-ROWS).reverse();
  const fresh = document.createDocumentFragment();
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.className = `state-${r.state}`;
    tr.dataset.auction = r.auction_id;
    const left = timeLeft(r);
    tr.append(cell(r.auction_id), cell(r.cluster ?? "", "num"), cell(r.bidders ?? "", "num"),
      cell(r.best_bid == null ? "" : r.best_bid.toPrecision(4), "num"),
      cell(left == null ? "" : `${left.toFixed(0)} s`, "num"), cell(short(r.winner)),
      cell(r.state));
    fresh.append(tr);
  }
  body.replaceChildren(fresh);
}

function openDiagram(id) {
  document.getElementById("diagram-title").textContent = `auction ${id}: conversation`;
  document.getElementById("diagram-frame").src = `/diagram/${encodeURIComponent(id)}`;
  document.getElementById("diagram").hidden = false;
}

document.querySelector("#auctions tbody").addEventListener("click", (e) => {
  const tr = e.target.closest("tr[data-auction]");
  if (tr) openDiagram(tr.dataset.auction);
});
document.getElementById("diagram-close").addEventListener("click", () => {
  document.getElementById("diagram").hidden = true;
});

// --- start -----------------------------------------------------------------------------------

async function start() {
  const [config, geo] = await Promise.all([
    fetch("/config.json").then((r) => r.json()), fetch("/map.geojson").then((r) => r.json())]);
  Object.assign(fleet, { epoch: config.epoch, speed: config.speed, nodes: config.nodes, geo });
  document.getElementById("map-name").textContent =
    `${config.map} · ${config.clusters} clusters · ×${config.speed}`;
  fit();
  window.addEventListener("resize", fit);
  const status = document.getElementById("status");
  const events = new EventSource("/events");
  events.addEventListener("snapshot", (e) => {
    onSnapshot(JSON.parse(e.data)); status.textContent = "live";
  });
  events.onmessage = (e) => onNews(JSON.parse(e.data));
  events.onerror = () => { status.textContent = "reconnecting…"; };
  setInterval(() => { table(); counters(); }, 250);
  requestAnimationFrame(draw);
}

// For tests and the curious: what the page holds and where it drew each vehicle.
window.fleetbidMap = {
  fleet, openDiagram,
  positions: () => Object.fromEntries([...positions].map(([k, [x, y]]) => [k, [x, y]])),
};

start().catch((err) => { document.getElementById("status").textContent = `error: ${err}`; });
