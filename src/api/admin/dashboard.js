'use strict';
// The dashboard reads the admin API of the hookd that serves it, every two
// seconds. It holds no data itself; with admin.token set it asks for the
// token once and keeps it in sessionStorage (this tab only). Everything it
// shows is put in the page as text (textContent), never as HTML.
const TOKEN_KEY = 'hookd-admin-token';
const REFRESH_MS = 2000;
const PAGE_SIZE = 20;
const CHART_MINUTES = 60;
const SVG = 'http://www.w3.org/2000/svg';
// The order attempts stack in, bottom first; each has a colour class r-<result>.
const RESULTS = ['success', 'status', 'timeout', 'connect', 'tls', 'dns', 'blocked_destination', 'redirect', 'io',
  'expired', 'corrupt_record', 'tenant_mismatch', 'circuit_open'];

const view = {
  selectedDelivery: null,
  chosenEndpoint: null,
  // The cursor each page of a listing starts at; the last is the page shown.
  endpointPages: [null],
  endpointNext: null,
  deliveryPages: [null],
  deliveryNext: null,
  // The deliveries of one event, when the operator searched for it.
  foundEvent: null,
};

function text(value) { return value === null || value === undefined ? '–' : String(value); }
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'onclick') node.addEventListener('click', value);
    else if (key === 'class') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(text(child)));
  return node;
}
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(text(child)));
  return node;
}
function when(iso) { return iso ? new Date(iso).toLocaleString() : '–'; }
function clock(iso) { return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); }
function pill(state) { return el('span', { class: 'pill ' + state }, state); }
function circuitPill(circuit) {
  return el('span', { class: 'pill circuit-' + circuit, 'data-circuit': circuit }, circuit.replace('_', '-'));
}
function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== undefined && value !== '') search.set(key, value);
  return search.toString();
}
function field(id) { return document.getElementById(id).value.trim(); }

async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers['Authorization'] = 'Bearer ' + token;
  if (method === 'POST') headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (response.status === 401) { showLogin(); throw new Error('unauthorized'); }
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(json.error ? json.error.message : response.statusText);
  return json;
}

function showLogin() {
  document.getElementById('app').hidden = true;
  document.getElementById('login').hidden = false;
}

function notice(message) {
  const banner = document.getElementById('notice');
  banner.textContent = message;
  banner.hidden = false;
  setTimeout(() => { banner.hidden = true; }, 4000);
}

async function act(method, path, done) {
  try { const answer = await api(method, path, {}); if (done) notice(done(answer)); }
  catch (error) { notice('Failed: ' + error.message); }
  refresh();
}

// A button's click in a clickable row: it does not also choose the row.
function inRow(handler) {
  return (event) => { event.stopPropagation(); handler(); };
}

function renderEndpoints(page) {
  const body = document.getElementById('endpoints');
  body.replaceChildren();
  if (!page.data.length) body.append(el('tr', {}, el('td', { colspan: 10, class: 'empty' }, 'No endpoints match.')));
  for (const e of page.data) {
    const state = !e.enabled ? 'disabled' : e.paused ? 'paused' : 'active';
    const rate = e.success_rate_1h === null ? '–' : Math.round(e.success_rate_1h * 100) + '%';
    const last = e.last_attempt ? `${text(e.last_attempt.status_code)} ${e.last_attempt.error_kind || 'ok'} · ${when(e.last_attempt.at)}` : '–';
    const path = `/v1/endpoints/${encodeURIComponent(e.id)}`;
    const actions = el('td', { class: 'actions' },
      el('button', { 'data-action': 'retry-failed', onclick: inRow(() => act('POST', `${path}/retry-failed`, a => `Retrying ${a.retried} failed deliveries to ${e.id}`)) }, 'Retry all failed'),
      e.paused
        ? el('button', { onclick: inRow(() => act('POST', `${path}/resume`, () => `${e.id} resumed`)) }, 'Resume')
        : el('button', { onclick: inRow(() => act('POST', `${path}/pause`, () => `${e.id} paused`)) }, 'Pause'),
      el('button', { onclick: inRow(() => act('POST', `${path}/test`, a => `Test event ${a.id} sent to ${e.id}`)) }, 'Send test'));
    const chosen = view.chosenEndpoint === e.id;
    body.append(el('tr', { class: 'clickable' + (chosen ? ' selected' : ''), 'data-endpoint': e.id, onclick: () => { view.chosenEndpoint = e.id; refresh(); } },
      el('td', {}, el('strong', {}, e.id), el('br'), el('code', {}, e.url)),
      el('td', {}, e.tenant), el('td', {}, pill(state)), el('td', {}, circuitPill(e.circuit)), el('td', {}, e.pending), el('td', {}, e.failed),
      el('td', {}, rate), el('td', { 'data-limits': '' }, text(e.concurrency) + (e.rate_limit ? ' · ' + e.rate_limit : '')),
      el('td', {}, last), actions));
  }
  view.endpointNext = page.next_cursor;
  document.getElementById('endpoints-page').textContent = 'page ' + view.endpointPages.length;
  document.getElementById('endpoints-prev').disabled = view.endpointPages.length === 1;
  document.getElementById('endpoints-next').disabled = !page.next_cursor;
}

function deliveryRow(d, cells) {
  return el('tr', { class: 'clickable' + (view.selectedDelivery === d.id ? ' selected' : ''), 'data-delivery': d.id, onclick: () => { view.selectedDelivery = d.id; refresh(); } }, ...cells);
}

function renderFailed(deliveries) {
  const body = document.getElementById('failed');
  body.replaceChildren();
  if (!deliveries.length) body.append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No failed deliveries.')));
  for (const d of deliveries) {
    const retry = el('button', { class: 'primary', 'data-action': 'retry', onclick: inRow(() => act('POST', `/v1/deliveries/${encodeURIComponent(d.id)}/retry`, () => `Retrying ${d.id}`)) }, 'Retry');
    body.append(deliveryRow(d, [el('td', {}, el('code', {}, d.id)), el('td', {}, d.event), el('td', {}, d.endpoint),
      el('td', {}, d.attempt_count), el('td', {}, when(d.updated_at)), el('td', {}, retry)]));
  }
}

function renderDeliveries(page) {
  const body = document.getElementById('deliveries');
  body.replaceChildren();
  const empty = view.foundEvent ? `No delivery of event ${view.foundEvent}.` : 'No deliveries match.';
  if (!page.data.length) body.append(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, empty)));
  for (const d of page.data) {
    body.append(deliveryRow(d, [el('td', {}, el('code', {}, d.id)), el('td', {}, d.event), el('td', {}, d.tenant), el('td', {}, d.endpoint),
      el('td', {}, pill(d.status)), el('td', {}, d.attempt_count), el('td', {}, when(d.next_attempt_at))]));
  }
  view.deliveryNext = page.next_cursor;
  document.getElementById('deliveries-page').textContent = view.foundEvent ? 'event ' + view.foundEvent : 'page ' + view.deliveryPages.length;
  document.getElementById('deliveries-prev').disabled = view.deliveryPages.length === 1;
  document.getElementById('deliveries-next').disabled = !page.next_cursor;
}

// The payload as the subscriber got it, indented when it is JSON.
function pretty(payload) {
  try { return JSON.stringify(JSON.parse(payload), null, 2); } catch (_) { return payload; }
}

async function renderDetail() {
  const section = document.getElementById('detail');
  if (!view.selectedDelivery) { section.hidden = true; return; }
  let d;
  try { d = await api('GET', `/v1/deliveries/${encodeURIComponent(view.selectedDelivery)}`); }
  catch (error) { notice(error.message); view.selectedDelivery = null; section.hidden = true; return; }
  document.getElementById('detail-id').textContent = d.id;
  document.getElementById('detail-status').replaceChildren(pill(d.status));
  const retry = document.getElementById('detail-retry');
  retry.hidden = d.status !== 'failed';
  retry.dataset.delivery = d.id;
  const facts = [['Event', d.event], ['Event id', d.event_id], ['Tenant', d.tenant], ['Endpoint', d.endpoint],
    ['Created', when(d.created_at)], ['Updated', when(d.updated_at)], ['Next attempt', when(d.next_attempt_at)]];
  document.getElementById('detail-facts').replaceChildren(...facts.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));
  document.getElementById('payload').textContent = pretty(d.payload);
  const body = document.getElementById('attempts');
  body.replaceChildren();
  if (!d.attempts.length) body.append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No attempts yet.')));
  for (const a of d.attempts) {
    body.append(el('tr', { 'data-attempt': a.n }, el('td', {}, a.n), el('td', {}, when(a.at)), el('td', {}, a.status_code),
      el('td', {}, a.latency_ms + ' ms'), el('td', {}, a.error_kind || 'ok'), el('td', {}, el('code', { class: 'snippet' }, a.response_snippet || '–'))));
  }
  if (section.hidden) { section.hidden = false; section.scrollIntoView({ block: 'nearest' }); }
}

// The charts' frame: the plot area inside the axes, in viewBox units.
const FRAME = { width: 640, height: 170, left: 40, right: 8, top: 8, bottom: 20 };
const PLOT_WIDTH = FRAME.width - FRAME.left - FRAME.right;
const PLOT_HEIGHT = FRAME.height - FRAME.top - FRAME.bottom;

function axes(chart, minutes, max, unit) {
  const bottom = FRAME.top + PLOT_HEIGHT;
  chart.append(
    svg('line', { class: 'axis', x1: FRAME.left, y1: bottom, x2: FRAME.width - FRAME.right, y2: bottom }),
    svg('line', { class: 'grid', x1: FRAME.left, y1: FRAME.top, x2: FRAME.width - FRAME.right, y2: FRAME.top }),
    svg('text', { class: 'label', x: FRAME.left - 4, y: FRAME.top + 4, 'text-anchor': 'end' }, max + unit),
    svg('text', { class: 'label', x: FRAME.left - 4, y: bottom, 'text-anchor': 'end' }, '0'));
  const ticks = [[0, 'start'], [Math.floor(minutes.length / 2), 'middle'], [minutes.length - 1, 'end']];
  for (const [index, anchor] of ticks) {
    const x = FRAME.left + (anchor === 'start' ? 0 : anchor === 'end' ? PLOT_WIDTH : (index + 0.5) * PLOT_WIDTH / minutes.length);
    chart.append(svg('text', { class: 'label', x, y: FRAME.height - 4, 'text-anchor': anchor }, clock(minutes[index].at)));
  }
}

// Shades the periods in which the circuit was open.
function bands(chart, minutes, periods) {
  const start = Date.parse(minutes[0].at);
  const end = Date.parse(minutes[minutes.length - 1].at) + 60000;
  const x = (ms) => FRAME.left + (ms - start) / (end - start) * PLOT_WIDTH;
  for (const period of periods) {
    const from = Math.max(start, Date.parse(period.from));
    const until = Math.min(end, period.until ? Date.parse(period.until) : Date.now());
    if (until <= from) continue;
    chart.append(svg('rect', { class: 'circuit-band', x: x(from), y: FRAME.top, width: Math.max(2, x(until) - x(from)), height: PLOT_HEIGHT,
      'data-from': period.from, 'data-until': period.until || '' }, svg('title', {}, 'circuit open')));
  }
}

function drawAttempts(minutes, periods) {
  const chart = document.getElementById('chart-attempts');
  chart.replaceChildren();
  const total = (m) => Object.values(m.attempts).reduce((sum, n) => sum + n, 0);
  const max = Math.max(1, ...minutes.map(total));
  bands(chart, minutes, periods);
  axes(chart, minutes, max, '');
  const width = PLOT_WIDTH / minutes.length;
  const totals = {};
  minutes.forEach((m, index) => {
    const column = svg('g', { class: 'minute', 'data-at': m.at, 'data-attempts': total(m) });
    const summary = RESULTS.filter(r => m.attempts[r]).map(r => `${m.attempts[r]} ${r}`).join(', ') || 'no attempts';
    column.append(svg('title', {}, `${clock(m.at)}: ${summary}`));
    let y = FRAME.top + PLOT_HEIGHT;
    for (const result of RESULTS) {
      const count = m.attempts[result];
      if (!count) continue;
      totals[result] = (totals[result] || 0) + count;
      const height = count / max * PLOT_HEIGHT;
      y -= height;
      column.append(svg('rect', { class: 'bar r-' + result, x: FRAME.left + index * width + 0.5, y, width: Math.max(1, width - 1), height,
        'data-result': result, 'data-count': count }));
    }
    chart.append(column);
  });
  const legend = RESULTS.filter(r => totals[r]).flatMap(r => [el('span', { class: 'key r-' + r }), `${r} ${totals[r]} `]);
  document.getElementById('legend-attempts').replaceChildren(...(legend.length ? legend : ['no attempts in the last hour']));
}

function drawLatency(minutes, periods) {
  const chart = document.getElementById('chart-latency');
  chart.replaceChildren();
  const max = Math.max(1, ...minutes.map(m => m.latency_ms ? m.latency_ms.p99 : 0));
  bands(chart, minutes, periods);
  axes(chart, minutes, max, ' ms');
  const width = PLOT_WIDTH / minutes.length;
  for (const quantile of ['p50', 'p99']) {
    let path = '';
    let joined = false;
    const points = [];
    minutes.forEach((m, index) => {
      if (!m.latency_ms) { joined = false; return; }
      const x = FRAME.left + (index + 0.5) * width;
      const y = FRAME.top + PLOT_HEIGHT - m.latency_ms[quantile] / max * PLOT_HEIGHT;
      path += `${joined ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
      joined = true;
      points.push(svg('circle', { class: 'point ' + quantile, cx: x, cy: y, r: 2.5, 'data-at': m.at, 'data-ms': m.latency_ms[quantile] },
        svg('title', {}, `${clock(m.at)}: ${quantile} ${m.latency_ms[quantile]} ms`)));
    });
    if (path) chart.append(svg('path', { class: 'line ' + quantile, d: path }));
    chart.append(...points);
  }
}

async function renderCharts() {
  const section = document.getElementById('charts');
  if (!view.chosenEndpoint) { section.hidden = true; return; }
  const stats = await api('GET', `/v1/endpoints/${encodeURIComponent(view.chosenEndpoint)}/stats?window=1h`);
  const minutes = stats.minutes.slice(-CHART_MINUTES);
  document.getElementById('charts-endpoint').textContent = stats.endpoint;
  drawAttempts(minutes, stats.circuit_open);
  drawLatency(minutes, stats.circuit_open);
  section.hidden = false;
}

function endpointsPath() {
  return '/v1/endpoints?' + query({ limit: PAGE_SIZE, q: field('endpoint-search'), tenant: field('endpoint-tenant'),
    cursor: view.endpointPages[view.endpointPages.length - 1] });
}

function deliveriesPath() {
  const filters = { limit: PAGE_SIZE, status: field('filter-status'), endpoint: field('filter-endpoint'),
    tenant: field('filter-tenant'), event: field('filter-event') };
  if (view.foundEvent) return '/v1/deliveries?' + query({ ...filters, event_id: view.foundEvent });
  return '/v1/deliveries?' + query({ ...filters, cursor: view.deliveryPages[view.deliveryPages.length - 1] });
}

let refreshing = null;
let again = false;
// One refresh at a time; a refresh asked for meanwhile runs after it.
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = load().finally(() => { refreshing = null; if (again) { again = false; refresh(); } });
  return refreshing;
}

async function load() {
  try {
    const [endpoints, failed, deliveries, config] = await Promise.all([
      api('GET', endpointsPath()),
      api('GET', '/v1/deliveries?status=failed&limit=50'),
      api('GET', deliveriesPath()),
      api('GET', '/v1/config'),
    ]);
    document.getElementById('login').hidden = true;
    document.getElementById('app').hidden = false;
    if (!view.chosenEndpoint && endpoints.data.length) view.chosenEndpoint = endpoints.data[0].id;
    renderEndpoints(endpoints);
    renderFailed(failed.data);
    renderDeliveries(deliveries);
    await Promise.all([renderCharts(), renderDetail()]);
    const banner = document.getElementById('reload-error');
    banner.hidden = !config.last_reload_error;
    banner.textContent = config.last_reload_error ? 'The last config reload was refused; hookd runs on the previous config:\n' + config.last_reload_error : '';
    document.getElementById('status').textContent = `config loaded ${when(config.loaded_at)}${config.restart_needed ? ' · restart needed' : ''} · updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error.message !== 'unauthorized') document.getElementById('status').textContent = 'cannot reach the admin API: ' + error.message;
  }
}

// Lists the deliveries of an event, and opens the one asked for by its id.
// A delivery id is `<event id>.<endpoint id>`; event ids have no dots, so
// both are found by the event id (and nothing asked for answers 404).
async function find(wanted) {
  view.deliveryPages = [null];
  view.foundEvent = wanted ? wanted.split('.')[0] : null;
  if (wanted.includes('.')) {
    try {
      const found = await api('GET', '/v1/deliveries?' + query({ event_id: view.foundEvent }));
      if (found.data.some(d => d.id === wanted)) view.selectedDelivery = wanted;
      else notice(`No delivery ${wanted}.`);
    } catch (error) { notice('Failed: ' + error.message); }
  }
  refresh();
}

function restartPages(pages) { pages.length = 0; pages.push(null); refresh(); }

document.getElementById('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value);
  refresh();
});
document.getElementById('find-form').addEventListener('submit', (event) => { event.preventDefault(); find(field('find')); });
document.getElementById('find').addEventListener('input', () => { if (!field('find') && view.foundEvent) find(''); });
for (const id of ['endpoint-search', 'endpoint-tenant']) document.getElementById(id).addEventListener('input', () => restartPages(view.endpointPages));
for (const id of ['filter-status', 'filter-endpoint', 'filter-tenant', 'filter-event']) document.getElementById(id).addEventListener('input', () => restartPages(view.deliveryPages));
document.getElementById('endpoints-next').addEventListener('click', () => { view.endpointPages.push(view.endpointNext); refresh(); });
document.getElementById('endpoints-prev').addEventListener('click', () => { view.endpointPages.pop(); refresh(); });
document.getElementById('deliveries-next').addEventListener('click', () => { view.deliveryPages.push(view.deliveryNext); refresh(); });
document.getElementById('deliveries-prev').addEventListener('click', () => { view.deliveryPages.pop(); refresh(); });
document.getElementById('detail-close').addEventListener('click', () => { view.selectedDelivery = null; refresh(); });
document.getElementById('detail-retry').addEventListener('click', (event) => {
  const id = event.currentTarget.dataset.delivery;
  act('POST', `/v1/deliveries/${encodeURIComponent(id)}/retry`, () => `Retrying ${id}`);
});
refresh();
setInterval(refresh, REFRESH_MS);
