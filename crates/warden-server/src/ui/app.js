/* Warden dashboard (/ui/app.js): polls GET /v1/plugins and each
 * GET /v1/plugins/{name} for versions, health and metrics, and, with the
 * admin token, GET /v1/admin/audit; runs the admin actions. Plain ES2020,
 * no dependencies. Server data goes into the page through textContent and
 * createElement only: plugin names and audit details are untrusted. */
'use strict';
const TOKEN_KEY = 'warden.admin-token';
const AUDIT_LIMIT = 50;
// Audit kinds that record something refused (crates/warden/src/audit).
const DENIALS = new Set(['grant-refused', 'grant-trimmed', 'socket-denied', 'name-lookup-denied',
  'fs-denied', 'http-denied', 'store-denied', 'not-granted', 'name-claimed']);
// Kinds that record a limit reached; the others (traps, quarantines, rollbacks...) are events.
const LIMITS = new Set(['timeout', 'out-of-fuel', 'memory-limit', 'stack-overflow', 'input-limit',
  'output-limit', 'log-cap', 'event-cap', 'instance-cap', 'store-quota', 'http-response-limit',
  'event-hops', 'data-quota', 'host-resource-limit']);
const ICON = { ok: '✓', warn: '!', bad: '✕' };
const ROLE = { stable: 0, candidate: 1, pinned: 2 };
const ACTIONS = {
  reload: ['Reload', 'Read the plugin\'s files again and swap in the new build if they changed; on failure the loaded build keeps serving.'],
  rollback: ['Roll back', 'End the canary: every call goes to the stable version and the candidate is unloaded.'],
  promote: ['Promote', 'Make the canary candidate the stable version; the old stable version drains.'],
  quarantine: ['Quarantine', 'Refuse the plugin\'s calls at once until it is released.'],
  release: ['Release', 'Let a quarantined plugin take calls again.'],
};
const $ = (id) => document.getElementById(id);
const rows = new Map();     // plugin name -> its <tr>
const samples = new Map();  // "plugin@version" -> the previous refresh's counters
const busy = new Set();     // plugins with an action under way
let audit = null, auditKey = ''; // the last audit entries read (newest first), as JSON
let inflight = null, timer = null, justSignedIn = false;

/* ---- small helpers ---- */
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c != null && c !== false) e.append(c); // strings become text nodes
  return e;
}
const badge = (level, text, title) => el('span', { class: `badge ${level}`, title }, `${ICON[level] || ''} ${text}`);
const muted = (text, title) => el('span', { class: 'muted', title }, text);
const line = (...c) => el('div', { class: 'v' }, ...c);
const fmtInt = (n) => (n == null ? '—' : Math.round(n).toLocaleString('en-US'));
const fmtRate = (r) => (r == null ? '—' : r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2));
const fmtPct = (x) => (x == null ? '—' : `${(x * 100).toFixed(x >= 0.1 ? 0 : 1)}%`);
const fmtSecs = (s) => (s == null ? '—' : s < 0.001 ? `${Math.round(s * 1e6)} µs`
  : s < 1 ? `${(s * 1e3).toFixed(s < 0.01 ? 2 : 1)} ms` : `${s.toFixed(2)} s`);
function fmtBytes(b) {
  let i = 0;
  for (; b >= 1024 && i < 3; i += 1) b /= 1024;
  return b == null ? '—' : `${b.toFixed(i && b < 10 ? 1 : 0)} ${['B', 'KiB', 'MiB', 'GiB'][i]}`;
}
const fmtTime = (d) => d.toLocaleTimeString('en-GB', { hour12: false });
// A serde Duration ({secs, nanos}) or a number of seconds, in seconds.
const secs = (d) => (typeof d === 'number' ? d : d ? (d.secs || 0) + (d.nanos || 0) / 1e9 : 0);
const pollMs = () => Math.max(250, Number(window.WARDEN_UI_POLL_MS) || 2000);

/* ---- the admin token ---- */
function getToken() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; } }
function setToken(token) {
  try { if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY); } catch { /* no storage */ }
  const signedIn = Boolean(getToken());
  [$('signin').hidden, $('signed-in').hidden] = [signedIn, !signedIn];
  document.body.dataset.admin = signedIn ? 'yes' : 'no';
}
// `#token=...` signs in once; the fragment is then removed from the address.
function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  if (!params.has('token')) return;
  setToken(params.get('token').trim());
  history.replaceState(null, '', location.pathname + location.search);
}

/* ---- HTTP ---- */
async function readBody(res) {
  const text = await res.text();
  try { return text ? JSON.parse(text) : null; } catch { return text; }
}
// The problem+json `detail` (or title), else the status.
const problemText = (res, body) => (body && typeof body === 'object' && (body.detail || body.title))
  || (typeof body === 'string' && body.trim().slice(0, 300)) || `HTTP ${res.status} ${res.statusText}`.trim();
async function request(method, url, admin, json) {
  const headers = { Accept: 'application/json, application/problem+json' };
  if (admin) headers.Authorization = `Bearer ${getToken()}`;
  if (json) headers['Content-Type'] = 'application/json';
  const body = json ? JSON.stringify(json) : undefined;
  const res = await fetch(url, { method, headers, body, cache: 'no-store', credentials: 'omit' });
  const answer = await readBody(res);
  if (res.ok) return answer;
  throw Object.assign(new Error(problemText(res, answer)), { status: res.status });
}

/* ---- status line and flash ---- */
function setLive(level, text) { $('live').dataset.level = level; $('live').textContent = `${ICON[level]} ${text}`; }
function flash(level, text) {
  const f = $('flash'); f.hidden = false; f.dataset.level = level;
  f.replaceChildren(el('span', { class: 'when' }, fmtTime(new Date())), ` ${text}`);
}

/* ---- metrics of one version between two refreshes ---- */
// The q-quantile of a bucketed histogram (`counts` has one more bucket than
// `bounds`, the open one), interpolating inside the bucket.
function quantile(bounds, counts, q) {
  const rank = q * counts.reduce((a, b) => a + b, 0);
  if (!rank) return null;
  for (let i = 0, seen = 0; i < counts.length; i += 1) {
    if (counts[i] > 0 && seen + counts[i] >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1]; // slower than the last bound
      const lo = i === 0 ? 0 : bounds[i - 1];
      return lo + (bounds[i] - lo) * ((rank - seen) / counts[i]);
    }
    seen += counts[i];
  }
  return null;
}

function health(v) {
  const m = v.metrics || {};
  const state = v.state || m.state || 'unknown';
  if (state === 'quarantined' || state === 'errored') return ['bad', state];
  if (m.breaker === 'open') return ['bad', 'breaker open'];
  if (m.breaker === 'half-open') return ['warn', 'breaker half-open'];
  if (state === 'ready') return ['ok', 'healthy'];
  return ['warn', state];
}

function measure(plugin, v, now) {
  const m = v.metrics;
  if (!m) return { health: health(v) };
  const errors = Object.values(m.errors || {}).reduce((a, b) => a + b, 0);
  const lat = m.latency || { bounds: [], counts: [], sum: 0 };
  const cur = { t: now, calls: m.calls, counts: lat.counts || [], sum: secs(lat.sum) };
  const before = samples.get(`${plugin}@${v.version}`);
  samples.set(`${plugin}@${v.version}`, cur);
  const s = { health: health(v), calls: m.calls, errors, errorRate: m.calls ? errors / m.calls : null, kinds: m.errors || {},
    busy: m.instances_busy, idle: m.instances_idle, memory: m.memory_bytes, peak: m.peak_memory };
  const dt = before ? (now - before.t) / 1000 : 0;
  if (!before || dt <= 0 || cur.calls < before.calls) return s; // first look, or a new build
  s.rate = (cur.calls - before.calls) / dt;
  const delta = cur.counts.map((n, i) => n - (before.counts[i] || 0));
  const n = delta.reduce((a, b) => a + b, 0);
  s.window = `${n} call${n === 1 ? '' : 's'} finished in the last ${dt.toFixed(1)} s`;
  if (n > 0 && delta.every((d) => d >= 0)) {
    s.p99 = quantile((lat.bounds || []).map(secs), delta, 0.99);
    s.mean = (cur.sum - before.sum) / n;
  }
  return s;
}

/* ---- the plugins table ---- */
function versionsOf(summary, detail) {
  const dep = detail && detail.deployment;
  if (dep) {
    const list = [...dep.versions].sort((a, b) => (ROLE[a.role] ?? 9) - (ROLE[b.role] ?? 9));
    return [list, dep.canary || null];
  }
  // No detail: what the list says (no metrics).
  const canary = summary.canary ? { version: summary.canary[0], percent: summary.canary[1] } : null;
  const list = (summary.versions || []).map((version) => ({ version,
    role: version === summary.stable ? 'stable' : canary && canary.version === version ? 'candidate' : 'pinned',
    state: version === summary.stable ? summary.state : null }));
  return [list.sort((a, b) => ROLE[a.role] - ROLE[b.role]), canary];
}
function versionCell(v, canary) {
  const role = v.role === 'candidate' ? 'canary' : v.role;
  const share = !canary ? null : v.role === 'stable' ? 100 - canary.percent : v.role === 'candidate' ? canary.percent : null;
  return line(el('span', { class: 'ver' }, v.version), ' ', el('span', { class: `tag role-${role}` }, role),
    share == null ? null : el('span', { class: 'share' }, ` ${+share.toFixed(2)}%`));
}
function canaryBar(canary) {
  const cand = el('span', { class: 'cand' });
  cand.style.width = `${Math.min(100, Math.max(0, canary.percent))}%`; // CSSOM, allowed by a strict CSP
  return el('div', { class: 'bar-split', title: `canary ${canary.version} gets ${canary.percent}% of unqualified calls` }, cand);
}
// The candidate's error rate against stable's.
function compare(cand, stable) {
  if (cand.errorRate == null || stable.errorRate == null) return null;
  const diff = (cand.errorRate - stable.errorRate) * 100;
  const level = diff > 5 ? 'bad' : diff > 0.05 ? 'warn' : 'ok';
  const text = `${diff > 0.05 ? '▲' : diff < -0.05 ? '▼' : '='} ${diff >= 0 ? '+' : ''}${diff.toFixed(1)} pts`;
  return el('span', { class: `tag ${level}`, title: `canary ${fmtPct(cand.errorRate)} vs stable ${fmtPct(stable.errorRate)} of calls failed since each was loaded; Warden rolls a canary back on its own when it does worse than stable by more than its rollback policy allows (5 points by default)` }, text);
}
function actionsCell(name, canary) {
  if (!getToken()) return [muted('sign in to act', 'Sign in with the admin token to act')];
  const names = ['reload', 'rollback', ...(canary ? ['promote'] : []), 'quarantine', 'release'];
  return [el('div', { class: 'btns' }, names.map((action) => el('button', {
    type: 'button', class: `act act-${action}${action === 'rollback' && !canary ? ' idle' : ''}`,
    'data-action': action, 'data-plugin': name, disabled: busy.has(name),
    title: action === 'rollback' && !canary ? `No canary runs: nothing to roll back. ${ACTIONS.rollback[1]}` : ACTIONS[action][1],
  }, ACTIONS[action][0])))];
}

function fillRow(tr, summary, detail, now) {
  const name = summary.name;
  const [versions, canary] = versionsOf(summary, detail);
  const stats = versions.map((v) => measure(name, v, now));
  const stable = stats[versions.findIndex((v) => v.role === 'stable')];
  const levels = stats.map((s) => s.health[0]);
  const worst = levels.includes('bad') ? 'bad' : levels.includes('warn') ? 'warn' : 'ok';
  tr.className = `row-${worst}`;
  tr.dataset.stable = summary.stable || '';
  tr.dataset.canary = canary ? canary.version : '';
  const denials = (audit || []).filter((e) => e.plugin === name && DENIALS.has(e.kind)).length;
  const cells = [
    [el('div', { class: 'name' }, name),
      el('div', { class: 'desc', title: summary.description || '' }, summary.description ? `${summary.description} · ` : '',
        `${summary.world || '?'} · contract ${summary.contract || '?'}`),
      denials ? el('div', null, el('span', { class: 'tag bad', title: `in the last ${AUDIT_LIMIT} audit entries` }, `✕ ${denials} denial${denials > 1 ? 's' : ''}`)) : null,
      detail ? null : el('div', null, muted('details unavailable', 'GET /v1/plugins/{name} failed; showing the list only'))],
    [versions.map((v) => versionCell(v, canary)), canary ? canaryBar(canary) : null],
    stats.map((s, i) => line(badge(s.health[0], s.health[1],
      `state ${versions[i].state || '?'}, breaker ${(versions[i].metrics || {}).breaker || '?'}`))),
    stats.map((s) => line(s.busy == null ? '—' : `${s.busy} / ${s.idle}`)),
    stats.map((s) => line(el('span', { title: s.peak == null ? null : `peak of one instance: ${fmtBytes(s.peak)}` }, fmtBytes(s.memory)))),
    stats.map((s) => line(fmtInt(s.calls))),
    stats.map((s, i) => {
      const kinds = Object.entries(s.kinds || {}).map(([k, n]) => `${k}: ${n}`).join(', ');
      const level = !s.errors ? 'ok' : s.errorRate > 0.05 ? 'bad' : 'warn';
      return line(el('span', { class: `err-${level}`, title: kinds || 'no failed call' }, `${fmtInt(s.errors)} · ${fmtPct(s.errorRate)}`),
        versions[i].role === 'candidate' && stable ? [' ', compare(s, stable)] : null);
    }),
    stats.map((s) => line(fmtRate(s.rate))),
    stats.map((s) => line(el('span', { title: s.window || 'needs two refreshes' }, fmtSecs(s.p99)),
      el('span', { class: 'muted' }, ` · ${fmtSecs(s.mean)}`))),
  ];
  cells.forEach((content, i) => tr.cells[i].replaceChildren(...[content].flat(2).filter((c) => c != null)));
  // The buttons are only rebuilt when they change, so a click is never lost to a refresh.
  const sig = `${Boolean(getToken())}|${Boolean(canary)}|${busy.has(name)}`;
  if (tr.dataset.sig !== sig) {
    tr.dataset.sig = sig;
    tr.cells[9].replaceChildren(...actionsCell(name, canary));
  }
  return { worst, stats, canary };
}

function renderPlugins(list, details, now) {
  const tbody = $('plugins').tBodies[0];
  const seen = new Set();
  const totals = { ok: 0, warn: 0, bad: 0, rate: 0, canaries: 0 };
  list.forEach((summary, i) => {
    let tr = rows.get(summary.name);
    if (!tr) {
      tr = el('tr', { 'data-plugin': summary.name });
      for (let c = 0; c < 10; c += 1) tr.append(el('td', { class: c >= 3 && c <= 8 ? 'num' : null }));
      tr.cells[9].className = 'actions';
      rows.set(summary.name, tr);
    }
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    seen.add(summary.name);
    const r = fillRow(tr, summary, details[i], now);
    totals[r.worst] += 1;
    totals.rate += r.stats.reduce((a, s) => a + (s.rate || 0), 0);
    if (r.canary) totals.canaries += 1;
  });
  for (const [name, tr] of rows) if (!seen.has(name)) { tr.remove(); rows.delete(name); }
  $('plugins-empty').hidden = list.length > 0;
  const denials = audit ? audit.filter((e) => DENIALS.has(e.kind)).length : null;
  $('summary').replaceChildren(
    el('li', null, el('b', null, String(list.length)), ' plugins'),
    el('li', { class: 'ok' }, el('b', null, `${ICON.ok} ${totals.ok}`), ' healthy'),
    el('li', { class: totals.warn ? 'warn' : null }, el('b', null, `${ICON.warn} ${totals.warn}`), ' degraded'),
    el('li', { class: totals.bad ? 'bad' : null }, el('b', null, `${ICON.bad} ${totals.bad}`), ' failing'),
    el('li', null, el('b', null, fmtRate(totals.rate)), ' calls/s'),
    el('li', null, el('b', null, String(totals.canaries)), ` canar${totals.canaries === 1 ? 'y' : 'ies'}`),
    denials == null ? '' : el('li', { class: denials ? 'bad' : null }, el('b', null, String(denials)), ` denials in the last ${AUDIT_LIMIT} audit entries`),
  );
}

/* ---- the audit log ---- */
function renderAudit(result) {
  const note = $('audit-note'), ol = $('audit');
  if (!result || result.error) {
    const err = result && result.error;
    const signIn = 'Sign in with the admin token to see the audit log and act.';
    if (err && err.status === 401) { flash('bad', `The server refused the admin token: ${err.message}`); setToken(''); }
    note.textContent = !err ? signIn : err.status === 401 ? `The admin token was refused (${err.message}). ${signIn}`
      : err.status === 404 ? 'This server\'s admin API is off: it was started without an admin token.'
        : `Could not read the audit log: ${err.message}`;
    note.hidden = false;
    if (!err || err.status === 401 || err.status === 404) { ol.replaceChildren(); audit = null; auditKey = ''; }
    return;
  }
  if (justSignedIn) { flash('ok', 'Signed in with the admin token.'); justSignedIn = false; }
  const entries = [...result.entries].reverse(); // the API answers oldest first
  audit = entries;
  note.hidden = entries.length > 0;
  note.textContent = 'No audit entry yet.';
  const key = JSON.stringify(entries);
  if (key === auditKey) return;
  auditKey = key;
  ol.replaceChildren(...entries.map((e) => {
    const kind = String(e.kind);
    const cls = DENIALS.has(kind) ? 'denial' : LIMITS.has(kind) ? 'limit' : 'event';
    const when = new Date(e.time);
    return el('li', { 'data-kind': kind, class: cls, title: `${e.time}${e.call_id ? ` · call ${e.call_id}` : ''}` },
      el('time', { datetime: e.time }, isNaN(when) ? String(e.time) : fmtTime(when)),
      el('span', { class: `tag kind-${cls}` }, cls === 'denial' ? `✕ denied: ${kind}` : cls === 'limit' ? `! ${kind}` : kind),
      el('span', { class: 'who' }, `${e.plugin}@${e.version}`),
      el('span', { class: 'res' }, String(e.resource ?? '')),
      el('span', { class: 'what' }, `→ ${e.action ?? ''}`));
  }));
}

/* ---- refreshing ---- */
async function load() {
  let list;
  try {
    list = await request('GET', '/v1/plugins');
    if (!Array.isArray(list)) throw new Error('GET /v1/plugins did not answer with a list');
  } catch (e) {
    document.body.dataset.state = 'error';
    setLive('bad', `refresh failed: ${e.message}`);
    return;
  }
  const [details, auditResult] = await Promise.all([
    Promise.all(list.map((p) => request('GET', `/v1/plugins/${encodeURIComponent(p.name)}`).catch(() => null))),
    getToken() ? request('GET', `/v1/admin/audit?limit=${AUDIT_LIMIT}`, true)
      .then((entries) => ({ entries }), (error) => ({ error })) : null,
  ]);
  renderAudit(auditResult);
  renderPlugins(list, details, performance.now());
  const now = new Date();
  Object.assign($('updated'), { textContent: fmtTime(now), title: now.toISOString() });
  document.body.dataset.state = 'ready';
  if (!document.hidden) setLive('ok', `live · every ${pollMs() / 1000} s`);
}
// One refresh at a time; a refresh asked for during one runs after it.
async function refresh() {
  while (inflight) await inflight;
  inflight = load().catch((e) => setLive('bad', `refresh failed: ${e.message}`));
  try { await inflight; } finally { inflight = null; }
}
function schedule() {
  clearTimeout(timer);
  timer = document.hidden ? null : setTimeout(async () => { await refresh(); schedule(); }, pollMs());
}

/* ---- actions ---- */
// What an action did, from its answer (and, for a rollback, what the table showed before).
function outcome(action, name, body, before) {
  const b = body && typeof body === 'object' ? body : {};
  switch (action) {
    case 'reload':
      return b.outcome !== 'replaced' ? `Reloaded ${name}: its files are unchanged.`
        : `Reloaded ${name}: ${b.from} → ${b.to}, serving after ${Math.round(b.serving_after_ms)} ms.`;
    case 'rollback': return `Rolled back ${name}: canary ${before.canary || '?'} removed; ${before.stable || 'the stable version'} takes every call.`;
    case 'promote': return `Promoted ${name}: ${b.stable || 'the canary'} is stable now.`;
    case 'quarantine': return `Quarantined ${name} ${b.version || ''}: its calls are refused until it is released.`;
    default: return `Released ${name} ${b.version || ''}: it takes calls again.`;
  }
}

async function act(action, name) {
  const [label, help] = ACTIONS[action];
  if (!window.WARDEN_UI_NO_CONFIRM && !window.confirm(`${label} ${name}?\n\n${help}`)) return;
  busy.add(name);
  const tr = rows.get(name), before = tr ? { ...tr.dataset } : {};
  if (tr) { tr.dataset.sig = ''; tr.querySelectorAll('button[data-action]').forEach((b) => { b.disabled = true; }); }
  flash('warn', `${label} ${name}…`);
  try {
    const reason = action === 'quarantine' ? { reason: 'quarantined from the dashboard' } : undefined;
    const body = await request('POST', `/v1/admin/plugins/${encodeURIComponent(name)}/${action}`, true, reason);
    flash('ok', outcome(action, name, body, before));
  } catch (e) {
    flash('bad', `${label} ${name} failed: ${e.message}`);
    if (e.status === 401) setToken('');
  } finally {
    busy.delete(name);
  }
  await refresh();
}

/* ---- start ---- */
function start() {
  $('host').textContent = location.host;
  tokenFromFragment();
  setToken(getToken());
  $('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    if (token) { justSignedIn = true; setToken(token); refresh(); }
  });
  $('sign-out').addEventListener('click', () => { setToken(''); flash('ok', 'Signed out.'); refresh(); });
  $('denials-only').addEventListener('change', (ev) => $('audit').classList.toggle('denials-only', ev.target.checked));
  $('plugins').addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action]');
    if (button && !button.disabled) act(button.dataset.action, button.dataset.plugin);
  });
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) { clearTimeout(timer); timer = null; setLive('warn', 'paused while the tab is hidden'); }
    else refresh().then(schedule);
  });
  refresh().then(schedule);
}
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
