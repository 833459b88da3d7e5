// Osprey streams dashboard: plain JS, no build step. Talks to the streams API of the same server.
// Live frames: MJPEG (<img src=/api/cameras/:id/mjpeg>) for up to MJPEG_MAX cameras (browsers allow ~6 HTTP/1.1
// connections per host), polled JPEGs (/api/cameras/:id/frame.jpg) beyond that.
const MJPEG_MAX = 4;
const $ = (sel, root = document) => root.querySelector(sel);
const grid = $('#grid');
const tiles = new Map(); // id → { el, img, mode, timer }
let cameras = [];
let previewFps = 2;

const fmtBytes = (n) => (n > 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / (1 << 20)).toFixed(0)} MiB`);
const fmtTime = (iso) => new Date(iso).toLocaleTimeString();
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmtAge = (ms) => (ms < 60000 ? `${Math.max(0, Math.round(ms / 1000))} s` : ms < 3600000 ? `${Math.round(ms / 60000)} min` : `${(ms / 3600000).toFixed(1)} h`);

// Control routes (restart, edit, rules) may need a bearer token (`--auth-token-file`): on 401 the dashboard asks
// for it once and keeps it for this tab only (sessionStorage), sending it as `Authorization: Bearer`.
const TOKEN_KEY = 'osprey-auth-token';
async function api(path, init = {}, retried = false) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { ...(init.headers || {}), ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(path, { ...init, headers });
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401 && !retried) {
    const entered = window.prompt('This action needs the operator token (osprey --auth-token-file):');
    if (entered) {
      sessionStorage.setItem(TOKEN_KEY, entered.trim());
      return api(path, init, true);
    }
  }
  if (res.status === 401) sessionStorage.removeItem(TOKEN_KEY);
  if (!res.ok) {
    const e = body?.error;
    throw new Error(e && typeof e === 'object' ? `${e.code}: ${e.message}` : e ? `${body.code}: ${e}` : `HTTP ${res.status}`);
  }
  return body;
}

function tileFor(cam) {
  let t = tiles.get(cam.id);
  if (t) return t;
  const el = $('#camera-tpl').content.firstElementChild.cloneNode(true);
  el.dataset.camera = cam.id;
  const img = $('.frame', el);
  img.alt = `live view of ${cam.name}`;
  img.addEventListener('load', () => (el.dataset.framesLoaded = String(Number(el.dataset.framesLoaded || 0) + 1)));
  $('.draw-zone', el).addEventListener('click', () => openZoneDialog(cam.id));
  $('.restart', el).addEventListener('click', () => restartCamera(cam.id, el));
  grid.append(el);
  t = { el, img, mode: null, timer: null };
  tiles.set(cam.id, t);
  return t;
}

function startFrames(t, id, useMjpeg) {
  const mode = useMjpeg ? 'mjpeg' : 'poll';
  if (t.mode === mode) return;
  clearTimeout(t.timer);
  t.mode = mode;
  if (mode === 'mjpeg') {
    t.img.src = `/api/cameras/${encodeURIComponent(id)}/mjpeg`;
  } else {
    const tick = () => {
      if (t.mode !== 'poll') return;
      const next = new Image();
      next.onload = () => {
        t.img.src = next.src;
        t.timer = setTimeout(tick, 1000 / previewFps);
      };
      next.onerror = () => (t.timer = setTimeout(tick, 1000));
      next.src = `/api/cameras/${encodeURIComponent(id)}/frame.jpg?t=${Date.now()}`;
    };
    tick();
  }
}

function renderCameras() {
  const ids = new Set(cameras.map((c) => c.id));
  for (const [id, t] of tiles) {
    if (!ids.has(id)) {
      clearTimeout(t.timer);
      t.mode = null;
      t.img.src = '';
      t.el.remove();
      tiles.delete(id);
    }
  }
  const useMjpeg = cameras.length <= MJPEG_MAX;
  for (const cam of cameras) {
    const t = tileFor(cam);
    $('.camera-name', t.el).textContent = cam.name === cam.id ? cam.id : `${cam.name} (${cam.id})`;
    const st = $('.state', t.el);
    st.textContent = cam.state + (cam.state === 'reconnecting' ? ` #${cam.attempt}` : '');
    st.className = `state ${cam.state}`;
    st.title = `${cam.reasonCode}: ${cam.reason}`;
    t.el.dataset.state = cam.state;
    t.el.dataset.reasonCode = cam.reasonCode;
    t.el.dataset.previewSeq = String(cam.previewSeq);
    const c = cam.counters;
    $('.camera-stats', t.el).innerHTML =
      `<span class="fps" title="processed frames per second over the last ${cam.rateWindowSeconds} s (source: ${cam.decodedFps.toFixed(1)} fps)">${cam.fps.toFixed(1)}/${cam.targetFps} fps</span> · ` +
      `latency ${cam.latencyMs === null ? '—' : `${cam.latencyMs.toFixed(0)} ms`} · batch ${cam.batchSize} · tracks ${cam.tracks}<br>` +
      `decoded ${c.decoded} · sampled ${c.sampled} · <span class="dropped">dropped ${c.dropped}</span> · processed ${c.processed}` +
      (c.reconnects ? ` · reconnects ${c.reconnects}` : '') +
      (cam.source ? ` · ${cam.source.width}×${cam.source.height}` : '') +
      (cam.lease ? `<br><span class="lease" title="lease token ${cam.lease.token}${cam.lease.takenFrom ? `, taken over from ${esc(cam.lease.takenFrom)}` : ''}">replica ${esc(cam.lease.replica)} · lease ${fmtAge(Date.now() - cam.lease.acquiredMs)} · failovers ${cam.lease.failovers}</span>` : '');
    // Why the camera is not streaming: one bounded, redacted reason (and the catalogue code of its error, if any).
    $('.camera-error', t.el).textContent =
      cam.state === 'streaming' ? '' : `${cam.reasonCode}: ${cam.reason}${cam.error && cam.state !== 'starting' ? ` (${cam.error.code})` : ''}`;
    if (cam.previewSeq > 0) startFrames(t, cam.id, useMjpeg);
  }
}

async function refresh() {
  try {
    const [{ cameras: cams }, stats] = await Promise.all([api('/api/cameras'), api('/api/streams/stats')]);
    cameras = cams;
    renderCameras();
    const b = stats.batcher;
    $('#server-stats').textContent =
      `${stats.streaming}/${stats.cameras} streaming${stats.starved ? ` · ${stats.starved} starved` : ''} · processed ${stats.frames.processed} · dropped ${stats.frames.dropped} · ` +
      `events ${stats.events} · RSS ${fmtBytes(stats.memory.rssBytes)}` +
      (b ? ` · ${b.executionProvider} · mean batch ${b.meanBatchSize.toFixed(2)} · infer ${b.meanInferMs.toFixed(1)} ms` : '') +
      (stats.gpu ? ` · GPU ${stats.gpu}` : '') +
      (stats.webhooks.length ? ` · webhook pending ${stats.webhooks.reduce((a, w) => a + w.pending, 0)}` : '') +
      (stats.mqtt && stats.mqtt.length ? ` · mqtt pending ${stats.mqtt.reduce((a, w) => a + w.pending, 0)}` : '') +
      ` · up ${stats.uptimeSeconds} s`;
  } catch (err) {
    $('#server-stats').textContent = `disconnected: ${err.message}`;
  }
}

// ---- events ----
const list = $('#events');
const seen = new Set();
function addEvent(e, prepend = true) {
  if (seen.has(e.id)) return;
  seen.add(e.id);
  const li = document.createElement('li');
  li.dataset.eventId = String(e.id);
  li.dataset.kind = e.kind;
  if (e.kind === 'state') {
    li.className = 'state-event';
    li.hidden = !$('#show-state').checked;
    li.innerHTML = `${fmtTime(e.time)} <b>${esc(e.camera)}</b> → ${esc(e.rule)} <code>${esc(e.details.reasonCode || '')}</code> <span>${esc(e.details.reason || '')}</span>`;
  } else {
    const extra = e.details.direction ? ` ${esc(e.details.direction)}` : e.details.dwellMs !== undefined ? ` dwell ${Math.round(e.details.dwellMs / 100) / 10} s` : '';
    li.className = 'rule-event';
    li.innerHTML =
      `<a href="/api/events/${e.id}/snapshot.jpg" target="_blank"><img loading="lazy" alt="snapshot of event ${e.id}" src="/api/events/${e.id}/snapshot.jpg"></a>` +
      `<div><b>${esc(e.rule)}</b> · ${esc(e.camera)}<br>${esc(e.className)} #${e.trackId} ${(e.score * 100).toFixed(0)}%${extra}<br>` +
      `<span class="muted">${fmtTime(e.time)} · ${e.latencyMs === null ? '' : `${e.latencyMs.toFixed(0)} ms`}</span></div>`;
    // The snapshot is written just after the event: retry once if it is not there yet.
    const img = $('img', li);
    img.addEventListener('error', () => setTimeout(() => (img.src = `${img.src.split('?')[0]}?r=${Date.now()}`), 500), { once: true });
  }
  if (prepend) list.prepend(li);
  else list.append(li);
  while (list.children.length > 200) list.lastElementChild.remove();
}
$('#show-state').addEventListener('change', (ev) => {
  for (const li of list.querySelectorAll('li.state-event')) li.hidden = !ev.target.checked;
});

async function loadEvents() {
  const { events } = await api('/api/events?limit=100');
  for (const e of events) addEvent(e, false);
}

function connectEvents() {
  const es = new EventSource('/api/stream-events');
  es.addEventListener('event', (m) => addEvent(JSON.parse(m.data)));
  es.onerror = () => {
    es.close();
    setTimeout(connectEvents, 2000);
  };
}

async function restartCamera(id, el) {
  const btn = $('.restart', el);
  btn.disabled = true;
  try {
    await api(`/api/cameras/${encodeURIComponent(id)}/restart`, { method: 'POST' });
    refresh();
  } catch (err) {
    $('.camera-error', el).textContent = `restart failed: ${err.message}`;
  } finally {
    btn.disabled = false;
  }
}

// ---- zone drawing ----
const dlg = $('#zone-dialog');
const canvas = $('#zone-canvas');
const ctx = canvas.getContext('2d');
let zoneCam = null;
let zoneImg = null;
let points = []; // canvas pixels

function drawZone() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (zoneImg) ctx.drawImage(zoneImg, 0, 0, canvas.width, canvas.height);
  if (!points.length) return;
  ctx.strokeStyle = '#00a0ff';
  ctx.fillStyle = 'rgba(0,160,255,0.25)';
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  if (points.length > 2) ctx.closePath();
  ctx.fill();
  ctx.stroke();
  for (const [x, y] of points) ctx.fillRect(x - 3, y - 3, 6, 6);
}

async function openZoneDialog(id) {
  const cam = cameras.find((c) => c.id === id);
  zoneCam = cam;
  points = [];
  $('#zone-camera').textContent = id;
  $('#zone-error').textContent = '';
  $('#zone-name').value = `zone-${(cam.rules?.length ?? 0) + 1}`;
  const w = cam.source?.width ?? 640;
  const h = cam.source?.height ?? 360;
  canvas.width = 640;
  canvas.height = Math.round((640 * h) / w);
  zoneImg = new Image();
  zoneImg.onload = drawZone;
  zoneImg.src = `/api/cameras/${encodeURIComponent(id)}/frame.jpg?t=${Date.now()}`;
  drawZone();
  dlg.showModal();
}

canvas.addEventListener('click', (ev) => {
  const r = canvas.getBoundingClientRect();
  points.push([((ev.clientX - r.left) * canvas.width) / r.width, ((ev.clientY - r.top) * canvas.height) / r.height]);
  drawZone();
});
$('#zone-clear').addEventListener('click', () => {
  points = [];
  drawZone();
});
$('#zone-save').addEventListener('click', async () => {
  const cam = zoneCam;
  if (!cam) return;
  const sx = (cam.source?.width ?? canvas.width) / canvas.width;
  const sy = (cam.source?.height ?? canvas.height) / canvas.height;
  const classes = $('#zone-classes').value.split(',').map((s) => s.trim()).filter(Boolean);
  const rule = {
    name: $('#zone-name').value,
    type: 'zone',
    zone: points.map(([x, y]) => [Math.round(x * sx), Math.round(y * sy)]),
    classes,
    minDwellMs: Number($('#zone-dwell').value || 0),
  };
  const rules = [...(cam.rules ?? []).filter((r) => r.name !== rule.name), rule];
  try {
    await api(`/api/cameras/${encodeURIComponent(cam.id)}/rules`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rules }) });
    dlg.close();
    refresh();
  } catch (err) {
    $('#zone-error').textContent = err.message;
  }
});

// ---- start ----
await refresh();
previewFps = 2;
loadEvents().catch((err) => ($('#server-stats').textContent = `events: ${err.message}`));
connectEvents();
setInterval(refresh, 1000);
