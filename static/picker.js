// The request form's catalog picker. It lists the Glue tables the policy makes requestable
// (searched and paged by /requests/new/tables), with their columns, types and sensitive
// columns; what is ticked is written into the form's own `resources` field, one line a table,
// and lines typed by hand are kept. What the policy makes of the tables picked (durations,
// approvals needed, sensitive columns) is shown before submitting (/requests/new/preview).
// Without JavaScript the form works as it is. Served from /static, within the pages'
// Content-Security-Policy: no inline script, no other origin.
const field = document.getElementById('resources');
const duration = document.getElementById('duration');
const picker = document.getElementById('picker');
const search = document.getElementById('picker-search');
const list = document.getElementById('picker-tables');
const more = document.getElementById('picker-more');
const status = document.getElementById('picker-status');
const summary = document.getElementById('picker-summary');

// `database.table` → null (every column) or the set of columns, as the field says now.
function parseField() {
  const picked = new Map();
  for (const raw of field.value.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    const table = (colon < 0 ? line : line.slice(0, colon)).trim().toLowerCase();
    const columns = colon < 0 ? null
      : new Set(line.slice(colon + 1).split(',').map((c) => c.trim()).filter(Boolean));
    picked.set(table, columns);
  }
  return picked;
}

function lineOf(table, columns) {
  return columns === null ? table : `${table}: ${[...columns].join(', ')}`;
}

// Puts `table`'s line (or removes it, for `undefined`) and keeps every other line as typed.
function writeLine(table, columns) {
  const lines = field.value.split('\n');
  const at = lines.findIndex((raw) => {
    const line = raw.trim();
    const colon = line.indexOf(':');
    return (colon < 0 ? line : line.slice(0, colon)).trim().toLowerCase() === table;
  });
  if (columns === undefined) {
    if (at >= 0) lines.splice(at, 1);
  } else if (at >= 0) {
    lines[at] = lineOf(table, columns);
  } else {
    lines.push(lineOf(table, columns));
  }
  field.value = lines.filter((l) => l.trim()).join('\n');
  schedulePreview();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === true) node.setAttribute(k, '');
    else if (v !== false && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// One table: its name and rules; opened, its columns to tick.
function tableItem(t) {
  const name = `${t.database}.${t.table}`;
  const key = name.toLowerCase();
  const id = `pick-${key.replace(/[^a-z0-9_]/g, '-')}`;
  const all = el('input', { type: 'checkbox', id: `${id}-all`, 'data-all': name });
  const boxes = t.columns.map((c) => el('input', {
    type: 'checkbox', id: `${id}-${c.name}`, 'data-column': c.name,
  }));
  const sensitiveCount = t.columns.filter((c) => c.sensitive).length;
  const sync = () => {
    const picked = parseField().get(key);
    all.checked = picked === null;
    for (const b of boxes) b.checked = picked === null || (picked?.has(b.dataset.column) ?? false);
  };
  const write = () => {
    const chosen = boxes.filter((b) => b.checked).map((b) => b.dataset.column);
    if (chosen.length === 0) writeLine(key, undefined);
    else if (chosen.length === boxes.length && all.checked) writeLine(key, null);
    else writeLine(key, new Set(chosen));
  };
  all.addEventListener('change', () => {
    for (const b of boxes) b.checked = all.checked;
    if (all.checked) writeLine(key, null);
    else writeLine(key, undefined);
  });
  for (const b of boxes) {
    b.addEventListener('change', () => {
      all.checked = false;
      write();
    });
  }
  const columns = el('ul', { class: 'picker-columns' },
    el('li', {}, el('label', { for: all.id }, all, ' Every column')),
    ...t.columns.map((c, i) => el('li', { class: c.sensitive ? 'sensitive' : undefined },
      el('label', { for: boxes[i].id }, boxes[i], ' ', el('code', {}, c.name), ' ',
        el('small', {}, c.type),
        ...(c.sensitive ? [' ', el('span', { class: 'badge badge-sensitive' }, 'sensitive')] : [])))));
  const details = el('details', { class: 'picker-table', 'data-table': name },
    el('summary', {}, el('code', {}, name),
      el('small', {}, ` ${t.columns.length} columns · ${t.rules.join(', ')}`),
      ...(sensitiveCount ? [' ', el('span', { class: 'badge badge-sensitive' }, `${sensitiveCount} sensitive`)] : [])),
    columns);
  details.addEventListener('toggle', sync);
  if (parseField().has(key)) details.open = true;
  sync();
  return el('li', {}, details);
}

let query = '';
let next = 0;
let loading = null;

async function load(reset) {
  if (reset) {
    next = 0;
    list.replaceChildren();
  }
  if (next === null) return;
  const mine = new AbortController();
  loading?.abort();
  loading = mine;
  status.textContent = 'Loading tables…';
  try {
    const params = new URLSearchParams({ q: query, offset: String(next) });
    const res = await fetch(`/requests/new/tables?${params}`, { credentials: 'same-origin', signal: mine.signal });
    const body = await res.json();
    if (!res.ok) throw new Error(body.message || res.statusText);
    list.append(...body.tables.map(tableItem));
    next = body.next_offset;
    more.hidden = next === null;
    const shown = list.children.length;
    status.textContent = body.total === 0
      ? (query ? `No requestable table matches “${query}”.` : 'No table is requestable.')
      : `${shown} of ${body.total} requestable tables${body.truncated ? ' (the catalog holds more: search to narrow it)' : ''}.`;
  } catch (e) {
    if (e.name !== 'AbortError') status.textContent = `Could not list tables: ${e.message}`;
  }
}

let previewTimer = null;
let previewSeq = 0;

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 300);
}

async function preview() {
  const seq = ++previewSeq;
  if (!field.value.trim()) {
    summary.replaceChildren();
    return;
  }
  const params = new URLSearchParams({ resources: field.value, duration: duration.value });
  try {
    const res = await fetch(`/requests/new/preview?${params}`, { credentials: 'same-origin' });
    const body = await res.json();
    if (seq !== previewSeq) return; // a newer one is on its way
    if (!res.ok) {
      summary.replaceChildren(el('p', { class: 'flash flash-error', id: 'preview-error' }, body.message));
      return;
    }
    const needs = body.auto_approved
      ? [el('strong', {}, 'Approved at once by the policy')]
      : body.approvals.map((a) => el('span', {},
        `${a.count} approval${a.count === 1 ? '' : 's'} from ${a.groups.join(' or ')} (${a.label})`));
    const rows = [
      ['Duration', `${body.default_duration} proposed; from ${body.min_duration} to ${body.max_duration} (${body.max_duration_rule})`],
      ['Needs', needs],
      ['Sensitive columns', body.sensitive_columns.length ? body.sensitive_columns.join(', ') : 'none'],
      ['Per-query scan limit', body.scan_cutoff],
      ['Scan budget', body.scan_budget ?? 'none'],
    ];
    const dl = el('dl', { class: 'facts', id: 'preview' });
    for (const [k, v] of rows) {
      const dd = el('dd');
      for (const part of [].concat(v)) {
        if (dd.childNodes.length) dd.append('; ');
        dd.append(part);
      }
      dl.append(el('dt', {}, k), dd);
    }
    summary.replaceChildren(el('h3', {}, 'What the policy says'), dl);
    // An untouched duration follows what the policy proposes for these tables.
    if (duration.value === duration.defaultValue && body.default_duration !== duration.value) {
      duration.value = body.default_duration;
      duration.defaultValue = body.default_duration;
    }
  } catch {
    // Offline for a moment: the next change tries again.
  }
}

if (picker && field && duration) {
  picker.hidden = false;
  let typingTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      query = search.value.trim();
      load(true);
    }, 250);
  });
  more.addEventListener('click', () => load(false));
  field.addEventListener('input', () => {
    for (const d of list.querySelectorAll('details')) d.dispatchEvent(new Event('toggle'));
    schedulePreview();
  });
  duration.addEventListener('input', schedulePreview);
  load(true);
  schedulePreview();
}
