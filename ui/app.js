// The fleet view: GET /domains and GET /addresses, kept current by GET /events (or polled every 30 s when the
// gateway has no event stream), and one domain's OS, file systems and interfaces. Nothing but the public API.
import { follow, StreamMissing } from './sse.js';

const TOKEN_KEY = 'qga-gateway.token';
const POLL_MS = 30_000;
/** The gateway's API: the parent of /ui/, wherever a proxy mounts it. */
const API = new URL('..', document.baseURI);
const $ = (id) => document.getElementById(id);

/** hosts: only those down, each with why ({detail}). */
const fleet = { domains: new Map(), addresses: new Map(), hosts: new Map() };
const keyOf = (d) => `${d.host}/${d.uuid}`;
let live = false;
/** Why the page is not live, while it is not. */
let notLive = 'connecting to the event stream';
let pollTimer = null;
let stream = null;

// ---- the token: in sessionStorage only (this tab, gone when it closes), never in the URL ---------------------------

const token = () => sessionStorage.getItem(TOKEN_KEY) ?? '';
const authHeaders = () => (token() ? { authorization: `Bearer ${token()}` } : {});
/** Set while the page waits for a token: nothing is asked of the API meanwhile (each ask would be one more 401). */
let waitingForToken = false;

/** The button to forget the token is in view whenever one is kept, also once the form is gone. */
function showForget() {
  $('forget').hidden = !token();
}

function askToken(note) {
  waitingForToken = true;
  $('token-note').textContent = note;
  $('token-form').hidden = false;
  showForget();
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('token').value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $('token').value = '';
  $('token-form').hidden = true;
  waitingForToken = false;
  showForget();
  start();
});
$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  // What the token let this tab see goes with it: the stream is closed and the table emptied.
  stream?.abort();
  stream = null;
  clearInterval(pollTimer);
  fleet.domains.clear();
  fleet.addresses.clear();
  renderFleet();
  setStatus('not-live', 'Not live: no token.');
  askToken('Token forgotten: enter one to see the fleet again.');
  $('token').focus();
});

// ---- the API ---------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code ?? String(status);
  }
}

async function api(path) {
  const sent = token();
  const res = await fetch(new URL(path, API), { headers: { accept: 'application/json', ...authHeaders() }, cache: 'no-store' });
  const body = await res.json().catch(() => null);
  if (res.status === 401) refused(sent);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

/** A 401 for a call made with this token ('' for none): a refused token is not kept (unless another replaced it). */
function refused(sent) {
  if (sent && token() === sent) sessionStorage.removeItem(TOKEN_KEY);
  askToken(sent ? 'The token was refused: enter another.' : 'This gateway asks for a token.');
}

// ---- building the page (text only: nothing the API says is ever parsed as HTML) -----------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

let announced = { text: '', at: 0 };
/**
 * Says a change to screen readers (a polite live region). The same words again within seconds are not repeated:
 * libvirt reports one guest reboot as several reboot events (QEMU resets the machine more than once).
 */
function announce(text) {
  const now = Date.now();
  if (text === announced.text && now - announced.at < 10_000) return;
  announced = { text, at: now };
  $('announce').textContent = text;
}

function setStatus(className, text) {
  $('live').textContent = text;
  $('live').className = className;
}

function setLive(isLive, text) {
  live = isLive;
  setStatus(isLive ? 'live' : 'not-live', text);
  clearInterval(pollTimer);
  pollTimer = isLive ? null : setInterval(() => waitingForToken || loadFleet(), POLL_MS);
}

const domainHref = (d) => `#/domain/${encodeURIComponent(d.host)}/${encodeURIComponent(d.uuid)}`;

function addressCell(d) {
  const a = fleet.addresses.get(keyOf(d));
  if (!a) return el('td', { 'data-label': 'Addresses', 'data-field': 'addresses', text: '—' });
  if (!a.ok)
    return el('td', { 'data-label': 'Addresses', 'data-field': 'addresses', class: 'muted', text: a.error?.code ?? 'unavailable' });
  const ips = a.interfaces.flatMap((i) => i.addresses).sort((x, y) => (x.family === y.family ? 0 : x.family === 'ipv4' ? -1 : 1));
  const list = el('ul', { class: 'plain' }, ...ips.map((ip) => el('li', { text: ip.address })));
  return el('td', { 'data-label': 'Addresses', 'data-field': 'addresses' }, ips.length ? list : '—');
}

/** The agent's state, or 'none' for a domain without an agent channel (which no event will ever connect). */
const agentOf = (d) => (d.agentChannel === false ? 'none' : d.agentState);

function renderFleet() {
  const table = $('fleet');
  const focused = document.activeElement?.closest?.('tr')?.dataset.key;
  for (const body of table.querySelectorAll('tbody')) body.remove();
  const byHost = new Map();
  for (const d of [...fleet.domains.values()].sort((a, b) => a.host.localeCompare(b.host) || a.name.localeCompare(b.name))) {
    if (!byHost.has(d.host)) byHost.set(d.host, []);
    byHost.get(d.host).push(d);
  }
  // A host that is down keeps its group, even with no domain to show: it is not silently missing from the fleet.
  for (const host of fleet.hosts.keys()) if (!byHost.has(host)) byHost.set(host, []);
  for (const [host, domains] of [...byHost].sort(([a], [b]) => a.localeCompare(b))) {
    const down = fleet.hosts.get(host);
    const body = el('tbody', { 'data-host': host });
    body.append(el('tr', {}, el('th', { scope: 'rowgroup', colspan: '4', class: 'host', text: `Host ${host}${down ? ' (down)' : ''}` })));
    if (down) {
      const why = down.detail ? `Not reachable: ${down.detail}.` : 'Not reachable.';
      const shown = domains.length ? 'Its domains are shown as last seen.' : 'Its domains cannot be listed.';
      body.append(el('tr', {}, el('td', { colspan: '4', class: 'error', text: `${why} ${shown}` })));
    }
    for (const d of domains) {
      body.append(
        el(
          'tr',
          { 'data-key': keyOf(d), 'data-domain': d.name },
          el('th', { scope: 'row' }, el('a', { href: domainHref(d), text: d.name })),
          el('td', { 'data-label': 'State', 'data-field': 'state', class: `state-${d.state}`, text: d.state }),
          el('td', { 'data-label': 'Agent', 'data-field': 'agent', class: `agent-${agentOf(d)}`, text: agentOf(d) }),
          addressCell(d),
        ),
      );
    }
    table.append(body);
  }
  if (!byHost.size) table.append(el('tbody', {}, el('tr', {}, el('td', { colspan: '4', text: 'No domains.' }))));
  if (focused) table.querySelector(`tr[data-key="${CSS.escape(focused)}"] a`)?.focus();
}

async function loadFleet() {
  const since = seen;
  try {
    const [domains, addresses] = await Promise.all([api('domains'), api('addresses')]);
    fleet.domains = new Map(domains.domains.map((d) => [keyOf(d), d]));
    fleet.addresses = new Map(addresses.domains.filter((a) => a.uuid).map((a) => [keyOf(a), a]));
    // The hosts the list could not reach; every other one answered.
    fleet.hosts = new Map(domains.unavailableHosts.map((h) => [h.host, { detail: h.detail }]));
    // Events that arrived while the answers were on their way may be newer than them: applied again, in order.
    for (const e of recent.filter((r) => r.n > since)) apply(e.event, e.data);
    $('fleet-error').hidden = true;
    if (!live)
      $('live').textContent = `Not live (${notLive}): refreshed every ${POLL_MS / 1000} s, last at ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    $('fleet-error').textContent = `Could not read the fleet: ${err.message}`;
    $('fleet-error').hidden = false;
  }
  renderFleet();
  domainChanged();
}

// ---- live updates: GET /events --------------------------------------------------------------------------------

/** The last events, numbered, for loadFleet to apply again over answers that may be older. */
const recent = [];
let seen = 0;

function onEvent({ event, data }) {
  let e;
  try {
    e = JSON.parse(data);
  } catch {
    return;
  }
  if (event === 'reset') return void loadFleet();
  recent.push({ n: ++seen, event, data: e });
  if (recent.length > 500) recent.shift();
  if (apply(event, e)) {
    if (event === 'host') announce(`Host ${e.host} is ${e.state}.`);
    // Back up: its domains may have changed meanwhile, or were never listed (the page loaded while it was down).
    if (event === 'host' && e.state === 'up') loadFleet();
    else if (event === 'domain' || event === 'agent') announce(`${e.domain.name}: ${event === 'agent' ? `agent ${e.state}` : e.event}.`);
    renderFleet();
    domainChanged();
  }
}

/** One event's change to the fleet; false when it changes nothing shown. */
function apply(event, e) {
  if (event === 'host') {
    if (e.state === 'down') fleet.hosts.set(e.host, { detail: e.error });
    else fleet.hosts.delete(e.host);
  } else if (e.domain) {
    const k = keyOf(e.domain);
    const known = fleet.domains.get(k);
    if (event === 'domain' && e.event === 'undefined') {
      fleet.domains.delete(k);
      fleet.addresses.delete(k);
    } else if (event === 'domain') {
      fleet.domains.set(k, { agentState: 'unknown', ...known, ...e.domain, state: e.state });
      if (e.state !== 'running') fleet.addresses.delete(k);
    } else if (event === 'agent' && known) {
      known.agentState = e.state;
    } else if (event === 'addresses') {
      fleet.addresses.set(k, { ...e.domain, ok: true, interfaces: e.interfaces });
    } else return false;
  } else return false;
  return true;
}

async function startLive() {
  stream?.abort();
  const controller = new AbortController();
  stream = controller;
  const sent = token();
  try {
    await follow(new URL('events?types=domain,agent,addresses,host', API), {
      headers: authHeaders,
      signal: controller.signal,
      onOpen: (resumed) => {
        setLive(true, 'Live: changes appear as they happen.');
        if (!resumed) loadFleet();
      },
      onEvent,
      onDown: () => {
        notLive = 'reconnecting to the event stream';
        setLive(false, `Not live: ${notLive}…`);
      },
    });
  } catch (err) {
    if (controller.signal.aborted) return;
    if (err.status === 401) {
      // No token, or one no longer accepted: nothing more is asked until one is entered (which starts all again).
      refused(sent);
      setLive(false, 'Not live: waiting for a token.');
      return;
    }
    notLive =
      err instanceof StreamMissing
        ? 'this gateway has no event stream'
        : `the event stream was refused${err.status === 403 ? ' to this token' : ''}: ${err.message}`;
    setLive(false, `Not live (${notLive}): refreshed every ${POLL_MS / 1000} s.`);
    // Asked again now and then: a gateway upgraded behind a proxy gains the stream without a reload of the page.
    setTimeout(() => stream === controller && !waitingForToken && startLive(), POLL_MS);
  }
}

// ---- one domain ---------------------------------------------------------------------------------------------------

function currentDomain() {
  const m = /^#\/domain\/([^/]+)\/([^/]+)$/.exec(location.hash);
  return m ? { host: decodeURIComponent(m[1]), uuid: decodeURIComponent(m[2]) } : null;
}

function dl(pairs) {
  return el('dl', {}, ...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v ?? '—' })]));
}

function table(caption, head, rows) {
  return el(
    'table',
    {},
    el('caption', { class: 'visually-hidden', text: caption }),
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c, i) => el('td', { 'data-label': head[i], text: c }))))),
  );
}

const bytes = (n) => (n === null || n === undefined ? '—' : `${(Number(n) / 2 ** 30).toFixed(2)} GiB`);

function renderSummary() {
  const id = currentDomain();
  const d = fleet.domains.get(`${id.host}/${id.uuid}`);
  $('domain-title').textContent = d ? d.name : id.uuid;
  $('domain-summary').replaceChildren(
    ...dl([
      ['Host', id.host],
      ['UUID', id.uuid],
      ['State', d?.state],
      ['Agent', d && agentOf(d)],
    ]).childNodes,
  );
}

async function section(target, path, render) {
  $(target).replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
  try {
    $(target).replaceChildren(render(await api(path)));
  } catch (err) {
    $(target).replaceChildren(el('p', { class: 'error', text: `Not available: ${err.message}` }));
  }
}

const SECTIONS = ['domain-os', 'domain-filesystems', 'domain-interfaces'];

/** Why the domain's agent cannot answer now, as far as the fleet knows; null when it may, or when not known yet. */
function agentUnavailable(d) {
  if (!d) return null;
  if (d.state !== 'running') return `the domain is ${d.state}`;
  if (d.agentChannel === false) return 'the domain has no guest agent channel';
  if (d.agentState === 'disconnected') return 'its guest agent is not connected';
  return null;
}

/** Why the open domain's sections were not asked for (shown instead), or null when they were. */
let skipped = null;

function showSkipped() {
  for (const id of SECTIONS) $(id).replaceChildren(el('p', { class: 'muted', text: `Not available: ${skipped}.` }));
}

function loadDomain() {
  const { host, uuid } = currentDomain();
  const base = `domains/${encodeURIComponent(`${host}:${uuid}`)}`;
  renderSummary();
  // Not asked when the answer is known to be an error: the sections say why, and load once the agent is back.
  skipped = agentUnavailable(fleet.domains.get(`${host}/${uuid}`));
  if (skipped) return void showSkipped();
  section('domain-os', `${base}/os`, ({ os }) =>
    dl([
      ['Name', os.prettyName ?? os.name],
      ['Version', os.version],
      ['Kernel', os.kernelRelease],
      ['Machine', os.machine],
    ]),
  );
  section('domain-filesystems', `${base}/filesystems`, ({ filesystems }) =>
    table(
      'File systems',
      ['Mount point', 'Type', 'Device', 'Used', 'Total'],
      filesystems.map((f) => [f.mountpoint, f.type, f.name, bytes(f.usedBytes), bytes(f.totalBytes)]),
    ),
  );
  section('domain-interfaces', `${base}/network-interfaces`, ({ interfaces }) =>
    table(
      'Network interfaces',
      ['Name', 'MAC', 'Addresses'],
      interfaces.map((i) => [i.name, i.mac ?? '—', i.addresses.map((a) => `${a.address}/${a.prefix}`).join(', ') || '—']),
    ),
  );
}

/** After a change to the fleet: the open domain's summary, and its sections once its agent can answer them. */
function domainChanged() {
  const id = currentDomain();
  if (!id) return;
  renderSummary();
  if (!skipped) return;
  const why = agentUnavailable(fleet.domains.get(`${id.host}/${id.uuid}`));
  if (!why) loadDomain();
  else if (why !== skipped) {
    skipped = why;
    showSkipped();
  }
}

/** Shows the view the URL's fragment names; after a change of view, moves the focus to its heading. */
function route(changed) {
  const domain = currentDomain();
  $('fleet-view').hidden = Boolean(domain);
  $('domain-view').hidden = !domain;
  if (domain && changed) loadDomain();
  if (changed) (domain ? $('domain-title') : $('fleet-title')).focus();
}

$('refresh-domain').addEventListener('click', loadDomain);
window.addEventListener('hashchange', () => route(true));

function start() {
  showForget();
  loadFleet();
  startLive();
  if (currentDomain()) loadDomain();
}

route(false);
start();
