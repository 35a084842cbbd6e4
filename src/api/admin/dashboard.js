'use strict';
// The dashboard reads the admin API of the hookd that serves it, every two
// seconds. It holds no data itself; with admin.token set it asks for the
// token once and keeps it in sessionStorage (this tab only).
const TOKEN_KEY = 'hookd-admin-token';
const REFRESH_MS = 2000;
let selected = null;

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
function when(iso) { return iso ? new Date(iso).toLocaleString() : '–'; }
function pill(state) { return el('span', { class: 'pill ' + state }, state); }
function circuitPill(circuit) {
  return el('span', { class: 'pill circuit-' + circuit, 'data-circuit': circuit }, circuit.replace('_', '-'));
}

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

function renderEndpoints(endpoints) {
  const body = document.getElementById('endpoints');
  body.replaceChildren();
  if (!endpoints.length) body.append(el('tr', {}, el('td', { colspan: 9, class: 'empty' }, 'No endpoints in the config.')));
  for (const e of endpoints) {
    const state = !e.enabled ? 'disabled' : e.paused ? 'paused' : 'active';
    const rate = e.success_rate_1h === null ? '–' : Math.round(e.success_rate_1h * 100) + '%';
    const last = e.last_attempt ? `${text(e.last_attempt.status_code)} ${e.last_attempt.error_kind || 'ok'} · ${when(e.last_attempt.at)}` : '–';
    const actions = el('td', { class: 'actions' },
      el('button', { 'data-action': 'retry-failed', onclick: () => act('POST', `/v1/endpoints/${e.id}/retry-failed`, a => `Retrying ${a.retried} failed deliveries to ${e.id}`) }, 'Retry all failed'),
      e.paused
        ? el('button', { onclick: () => act('POST', `/v1/endpoints/${e.id}/resume`, () => `${e.id} resumed`) }, 'Resume')
        : el('button', { onclick: () => act('POST', `/v1/endpoints/${e.id}/pause`, () => `${e.id} paused`) }, 'Pause'),
      el('button', { onclick: () => act('POST', `/v1/endpoints/${e.id}/test`, a => `Test event ${a.id} sent to ${e.id}`) }, 'Send test'));
    body.append(el('tr', { 'data-endpoint': e.id },
      el('td', {}, el('strong', {}, e.id), el('br'), el('code', {}, e.url)),
      el('td', {}, pill(state)), el('td', {}, circuitPill(e.circuit)), el('td', {}, e.pending), el('td', {}, e.failed),
      el('td', {}, rate), el('td', { 'data-limits': '' }, text(e.concurrency) + (e.rate_limit ? ' · ' + e.rate_limit : '')),
      el('td', {}, last), actions));
  }
}

function deliveryRow(d, cells) {
  const row = el('tr', { class: 'clickable' + (selected === d.id ? ' selected' : ''), 'data-delivery': d.id, onclick: () => { selected = d.id; refresh(); } }, ...cells);
  return row;
}

function renderFailed(deliveries) {
  const body = document.getElementById('failed');
  body.replaceChildren();
  if (!deliveries.length) body.append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No failed deliveries.')));
  for (const d of deliveries) {
    const retry = el('button', { class: 'primary', 'data-action': 'retry', onclick: (event) => {
      event.stopPropagation();
      act('POST', `/v1/deliveries/${d.id}/retry`, () => `Retrying ${d.id}`);
    } }, 'Retry');
    body.append(deliveryRow(d, [el('td', {}, el('code', {}, d.id)), el('td', {}, d.event), el('td', {}, d.endpoint),
      el('td', {}, d.attempt_count), el('td', {}, when(d.updated_at)), el('td', {}, retry)]));
  }
}

function renderRecent(deliveries) {
  const body = document.getElementById('recent');
  body.replaceChildren();
  if (!deliveries.length) body.append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No deliveries yet.')));
  for (const d of deliveries) {
    body.append(deliveryRow(d, [el('td', {}, el('code', {}, d.id)), el('td', {}, d.event), el('td', {}, d.endpoint),
      el('td', {}, pill(d.status)), el('td', {}, d.attempt_count), el('td', {}, when(d.next_attempt_at))]));
  }
}

async function renderDetail() {
  const section = document.getElementById('detail');
  if (!selected) { section.hidden = true; return; }
  const d = await api('GET', `/v1/deliveries/${encodeURIComponent(selected)}`);
  document.getElementById('detail-id').textContent = d.id + ' · ' + d.status;
  const body = document.getElementById('attempts');
  body.replaceChildren();
  if (!d.attempts.length) body.append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No attempts yet.')));
  for (const a of d.attempts) {
    body.append(el('tr', { 'data-attempt': a.n }, el('td', {}, a.n), el('td', {}, when(a.at)), el('td', {}, a.status_code),
      el('td', {}, a.latency_ms + ' ms'), el('td', {}, a.error_kind || 'ok'), el('td', {}, el('code', { class: 'snippet' }, a.response_snippet || '–'))));
  }
  section.hidden = false;
}

async function refresh() {
  try {
    const [endpoints, failed, recent, config] = await Promise.all([
      api('GET', '/v1/endpoints'),
      api('GET', '/v1/deliveries?status=failed&limit=50'),
      api('GET', '/v1/deliveries?limit=20'),
      api('GET', '/v1/config'),
    ]);
    document.getElementById('login').hidden = true;
    document.getElementById('app').hidden = false;
    renderEndpoints(endpoints.data);
    renderFailed(failed.data);
    renderRecent(recent.data);
    await renderDetail();
    const banner = document.getElementById('reload-error');
    banner.hidden = !config.last_reload_error;
    banner.textContent = config.last_reload_error ? 'The last config reload was refused; hookd runs on the previous config:\n' + config.last_reload_error : '';
    document.getElementById('status').textContent = `config loaded ${when(config.loaded_at)}${config.restart_needed ? ' · restart needed' : ''} · updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error.message !== 'unauthorized') document.getElementById('status').textContent = 'cannot reach the admin API: ' + error.message;
  }
}

document.getElementById('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value);
  refresh();
});
document.getElementById('detail-close').addEventListener('click', () => { selected = null; refresh(); });
refresh();
setInterval(refresh, REFRESH_MS);
