// The sqlsync inspector's page: polls the coordinator's inspector API
// (/v1/inspect/, docs/inspector.md) about once a second and shows the open
// documents, the selected one's clients, presences, commits and rejections, and runs
// read-only queries in its SQL console. Plain DOM, no dependencies; text
// goes in with textContent only.
'use strict';

const api = '/v1/inspect/';
const tokenKey = 'sqlsync-inspector-token';
const pollMs = 1000;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(tokenKey) ?? '';
let selected = '';
let paused = false; // after a refusal, until a new token is given
let timer = 0;

// The URL's fragment may carry the document to show and a token (a
// fragment never reaches the server): #doc=ID&token=T. The token moves to
// this tab's session storage and out of the address bar.
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has('token')) {
    token = params.get('token');
    sessionStorage.setItem(tokenKey, token);
    params.delete('token');
    history.replaceState(null, '', '#' + params.toString());
  }
  selected = params.get('doc') ?? '';
}

async function call(path, options = {}) {
  const headers = { ...(options.headers ?? {}) };
  if (token) headers.Authorization = 'Bearer ' + token;
  const resp = await fetch(api + path, { ...options, headers, cache: 'no-store' });
  let body;
  try {
    body = await resp.json();
  } catch {
    body = { error: `HTTP ${resp.status}` };
  }
  if (!resp.ok) {
    const e = new Error(body.error ?? `HTTP ${resp.status}`);
    e.status = resp.status;
    e.code = body.code;
    throw e;
  }
  return body;
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

function fill(tbody, items, render) {
  const rows = items.map((item) => {
    const tr = document.createElement('tr');
    render(tr, item);
    return tr;
  });
  tbody.replaceChildren(...rows);
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KiB`;
  if (bytes < 1 << 30) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  return `${(bytes / (1 << 30)).toFixed(2)} GiB`;
}

const time = (iso) => new Date(iso).toLocaleTimeString();
const short = (hash) => (hash ? hash.slice(0, 12) : 'built-in Go');

function renderDocs(o) {
  $('mode').textContent = o.open_mode
    ? 'Open development mode: no token key is configured, so no token is needed here (the inspector answers on loopback only).'
    : 'A token key is configured: the inspector needs a token with role admin.';
  $('docs-empty').hidden = o.documents.length > 0;
  fill($('docs').tBodies[0], o.documents, (tr, d) => {
    const td = document.createElement('td');
    const a = document.createElement('a');
    a.href = '#doc=' + encodeURIComponent(d.id);
    a.textContent = d.id;
    if (d.id === selected) a.setAttribute('aria-current', 'true');
    td.append(a);
    tr.append(td);
    cell(tr, d.lsn, 'num');
    cell(tr, d.page_count, 'num');
    cell(tr, size(d.bytes), 'num');
    cell(tr, d.clients, 'num');
    cell(tr, short(d.mutator_hash), 'mono');
  });
  const more = o.total > o.documents.length ? ` (${o.documents.length} shown)` : '';
  $('status').textContent = `Updated ${time(o.time)} · ${o.total} document${o.total === 1 ? '' : 's'} open${more} · ${o.connections} connection${o.connections === 1 ? '' : 's'}`;
}

function fact(dl, name, value) {
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}

function renderDoc(d) {
  $('doc-heading').textContent = `Document ${d.id}`;
  const dl = document.createElement('dl');
  dl.id = 'doc-facts';
  fact(dl, 'LSN', d.lsn);
  fact(dl, 'Size', `${size(d.bytes)} (${d.page_count} pages)`);
  fact(dl, 'Schema version', d.schema_version);
  const m = d.mutator;
  fact(dl, 'Mutator', m.kind === 'wasm' ? `WebAssembly module, ABI version ${m.abi_version}, ${size(m.bytes)}` : 'built-in Go mutator');
  if (m.hash) fact(dl, 'Mutator hash', m.hash);
  fact(dl, 'Clients', d.clients);
  $('doc-facts').replaceWith(dl);

  fill($('clients').tBodies[0], d.client_list, (tr, c) => {
    cell(tr, c.client_id, 'mono');
    cell(tr, c.remote + (c.forwarded ? ' (forwarded)' : ''));
    cell(tr, c.role);
    cell(tr, c.sent_lsn, 'num');
    cell(tr, c.lag, 'num');
    cell(tr, c.pending, 'num');
    cell(tr, c.last_seq, 'num');
    cell(tr, time(c.connected_at));
  });
  fill($('presence').tBodies[0], d.presences, (tr, p) => {
    cell(tr, p.id, 'mono');
    cell(tr, p.client_id, 'mono');
    cell(tr, p.read_only ? 'read' : 'write');
    cell(tr, JSON.stringify(p.state), 'mono');
    cell(tr, time(p.expires));
  });
  const more = d.presence_total - d.presences.length;
  $('presence-more').hidden = more <= 0;
  $('presence-more').textContent = more > 0 ? `and ${more} more` : '';
  fill($('commits').tBodies[0], d.commits, (tr, c) => {
    cell(tr, c.lsn > c.from_lsn + 1 ? `${c.from_lsn + 1}–${c.lsn}` : c.lsn, 'num');
    const names = c.mutations.map((m) => `${m.name} (${m.client}/${m.seq})`);
    if (c.more_mutations) names.push(`and ${c.more_mutations} more`);
    cell(tr, names.join(', '));
    cell(tr, c.applied, 'num');
    cell(tr, c.rejected, 'num');
    cell(tr, c.pages_changed, 'num');
    cell(tr, `${c.duration_ms.toFixed(1)} ms`, 'num');
    cell(tr, time(c.at));
  });
  fill($('rejections').tBodies[0], d.rejections, (tr, r) => {
    cell(tr, r.lsn, 'num');
    cell(tr, r.client, 'mono');
    cell(tr, r.seq, 'num');
    cell(tr, r.name);
    cell(tr, r.message);
  });
}

function showError(e) {
  $('error').textContent = e ? e.message : '';
}

async function refresh() {
  clearTimeout(timer);
  if (paused) return;
  try {
    renderDocs(await call('docs'));
    const section = $('doc');
    if (selected) {
      try {
        renderDoc(await call('docs/' + encodeURIComponent(selected)));
        section.hidden = false;
      } catch (e) {
        if (e.status !== 404) throw e;
        $('doc-heading').textContent = `Document ${selected}`;
        $('doc-facts').replaceChildren();
        section.hidden = true;
        showError(e);
        schedule();
        return;
      }
    } else {
      section.hidden = true;
    }
    showError(null);
  } catch (e) {
    showError(e);
    if (e.status === 401 || e.status === 403) {
      // Refused: wait for a token rather than asking again every second.
      paused = true;
      $('status').textContent = 'Not authorized: give a token with role admin.';
      $('token').focus();
      return;
    }
  }
  schedule();
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(refresh, pollMs);
}

async function runQuery(event) {
  event.preventDefault();
  const note = $('console-note');
  const table = $('result');
  $('console-error').textContent = '';
  note.textContent = 'Running…';
  try {
    const r = await call('docs/' + encodeURIComponent(selected) + '/query', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sql: $('sql').value }),
    });
    const head = document.createElement('tr');
    for (const c of r.columns) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = c;
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    fill(table.tBodies[0], r.rows, (tr, row) => {
      for (const v of row) {
        if (v === null) cell(tr, 'NULL', 'null');
        else if (typeof v === 'object') cell(tr, `x'${v.blob_hex}'${v.bytes * 2 > v.blob_hex.length ? '…' : ''}`, 'mono');
        else cell(tr, String(v), typeof v === 'number' ? 'num' : '');
      }
    });
    table.hidden = false;
    let text = `${r.rows.length} row${r.rows.length === 1 ? '' : 's'} at LSN ${r.lsn} in ${r.elapsed_ms.toFixed(1)} ms`;
    if (r.truncated) text += ` (truncated: the ${r.truncated_by === 'rows' ? 'row' : 'size'} limit was reached)`;
    note.textContent = text;
  } catch (e) {
    table.hidden = true;
    note.textContent = '';
    $('console-error').textContent = e.message;
  }
}

function main() {
  readHash();
  $('token').value = token;
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    token = $('token').value.trim();
    if (token) sessionStorage.setItem(tokenKey, token);
    else sessionStorage.removeItem(tokenKey);
    paused = false;
    refresh();
  });
  $('forget-token').addEventListener('click', () => {
    token = '';
    $('token').value = '';
    sessionStorage.removeItem(tokenKey);
    paused = false;
    refresh();
  });
  $('console-form').addEventListener('submit', runQuery);
  window.addEventListener('hashchange', () => {
    readHash();
    $('result').hidden = true;
    $('console-note').textContent = '';
    $('console-error').textContent = '';
    refresh();
  });
  refresh();
}

main();
