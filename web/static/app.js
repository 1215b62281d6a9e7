/* plex-servarr-sync page: queue, history, stats and the manual trigger with its preview.
 * Plain script, no dependencies. Every value from the daemon is put into the page as text
 * (textContent, never innerHTML), so a folder named <img src=x onerror=alert(1)> shows as text. */
'use strict';

(function () {
  const QUEUE_EVERY = 2000;     // ms between queue and stats refreshes
  const HISTORY_EVERY = 5000;   // ms between history refreshes (first page only)
  const HISTORY_PAGE = 50;

  const $ = (id) => document.getElementById(id);

  /* ---- small DOM helpers ---- */

  function el(tag, props, ...children) {
    const n = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') n.className = v;
        else if (k === 'text') n.textContent = String(v);
        else if (k === 'dataset') Object.assign(n.dataset, v);
        else if (k === 'on') for (const [ev, fn] of Object.entries(v)) n.addEventListener(ev, fn);
        else n.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  function setText(id, text) {
    const n = $(id);
    if (n.textContent !== text) n.textContent = text;
  }

  /* ---- formatting ---- */

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return '–';
    if (ms < 1000) return Math.round(ms) + ' ms';
    const s = ms / 1000;
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + Math.round(s % 60) + ' s';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  function fmtIn(ms) {
    if (ms <= 500) return 'now';
    return 'in ' + fmtDuration(Math.ceil(ms / 1000) * 1000);
  }

  function fmtAgo(wallMs) {
    const d = Date.now() - wallMs;
    if (d < 5000) return 'just now';
    return fmtDuration(Math.round(d / 1000) * 1000) + ' ago';
  }

  function fmtTime(wallMs) {
    const d = new Date(wallMs);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    return sameDay ? t : d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + t;
  }

  function sectionText(o) {
    if (o.section === null || o.section === undefined) return '–';
    return o.section_title ? o.section_title + ' (' + o.section + ')' : String(o.section);
  }

  const KIND_LABEL = { plex: 'Plex', jellyfin: 'Jellyfin', emby: 'Emby' };
  const kindLabel = (k) => KIND_LABEL[k] || k || 'media server';

  // A library as people know it: its title; a Plex section also by its number (Jellyfin's and
  // Emby's ids are long hashes, shown only in the tooltip).
  function libraryText(d) {
    if (d.library === null || d.library === undefined || d.library === '') return 'library not known yet';
    if (d.library_title) return d.kind === 'plex' ? d.library_title + ' (' + d.library + ')' : d.library_title;
    return d.kind === 'plex' ? 'section ' + d.library : 'library ' + d.library;
  }

  /* ---- API ---- */

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, opts) {
    const init = Object.assign({ credentials: 'same-origin', cache: 'no-store', headers: {} }, opts || {});
    init.headers = Object.assign({ Accept: 'application/json' }, init.headers);
    const res = await fetch(path, init);
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok && res.status !== 202) {
      throw new ApiError(res.status, (body && body.message) || ('HTTP ' + res.status));
    }
    return body;
  }

  /* ---- live indicator ---- */

  let lastOk = 0;
  function live(ok, text) {
    const n = $('st-live');
    n.className = 'pill ' + (ok ? 'up' : 'down');
    n.querySelector('b').textContent = text;
    if (ok) lastOk = Date.now();
  }

  function pill(id, state, text, title) {
    const n = $(id);
    n.className = 'pill ' + state;
    n.querySelector('b').textContent = text;
    if (title) n.title = title; else n.removeAttribute('title');
  }

  /* ---- stats ---- */

  // One pill per media server ("target"), kept in the order the daemon lists them, before
  // rclone's pill. Without any target, one pill says so.
  function targetState(t) {
    const kind = kindLabel(t.kind);
    const counts = t.deliveries ? ' · sent ' + t.deliveries.ok + ' ok, ' + t.deliveries.failed + ' failed, ' +
      t.deliveries.parked + ' parked' : '';
    if (t.token_refused) return ['down', 'token refused', t.error || kind + ' refused the token: fix it and reload'];
    if (!t.reachable) {
      if (t.checked_at || t.down_since || t.error) {
        return ['down', 'no answer', (t.error || kind + ' does not answer') +
          (t.down_since ? ' (since ' + new Date(t.down_since).toLocaleString() + ')' : '')];
      }
      return ['unknown', 'checking', 'not asked yet'];
    }
    if (!t.libraries_read_at) return ['warn', 'list not read', t.error || 'its library list has not been read yet'];
    return ['up', 'answers', t.libraries + (t.libraries === 1 ? ' library' : ' libraries') +
      ', read ' + fmtAgo(t.libraries_read_at) + counts];
  }

  let targetCount = null; // how many media servers /api/stats listed last

  function renderTargets(targets) {
    targetCount = Array.isArray(targets) ? targets.length : null;
    const list = $('st-rclone').parentNode;
    const old = new Map();
    for (const n of list.querySelectorAll('li[data-target]')) old.set(n.dataset.target, n);
    const none = $('st-targets');
    if (!Array.isArray(targets) || targets.length === 0) {
      for (const n of old.values()) n.remove();
      none.hidden = false;
      pill('st-targets', 'down', 'no media server configured', 'Set PLEX_URL, JELLYFIN_URL, EMBY_URL or MEDIA_SERVERS');
      none.querySelector('.name').hidden = true;
      return;
    }
    none.hidden = true;
    const seen = new Set();
    for (const t of targets) {
      const name = String(t.name);
      seen.add(name);
      let n = old.get(name);
      if (!n) {
        n = el('li', { class: 'pill unknown', dataset: { target: name } }, el('span', { class: 'dot' }),
          el('span', { class: 'name', text: name }), el('span', { class: 'kind' }),
          el('span', { class: 'sr-only', text: ': ' }), el('b', { text: '…' }));
      }
      list.insertBefore(n, $('st-rclone'));
      // The kind is shown when the name does not already say it ("plex" is a Plex server).
      const kind = kindLabel(t.kind);
      const kindText = name.toLowerCase() === String(t.kind).toLowerCase() ? '' : kind;
      const k = n.querySelector('.kind');
      if (k.textContent !== kindText) k.textContent = kindText;
      const [state, text, why] = targetState(t);
      n.className = 'pill ' + state;
      n.querySelector('b').textContent = text;
      n.title = name + ' (' + kind + '): ' + why;
    }
    for (const [name, n] of old) if (!seen.has(name)) n.remove();
  }

  /* ---- notifications ---- */

  // The destinations as the daemon shows them: type, scheme://host (the rest of a URL is a
  // secret and never leaves the daemon), the events, and how the last message went.
  function notifyLine(d) {
    const events = Array.isArray(d.events) ? d.events.join(', ') : '';
    let last = 'nothing sent yet';
    if (d.last) {
      const when = d.last.at ? fmtAgo(Date.parse(d.last.at)) : '';
      last = d.last.ok ? 'last message delivered ' + when : 'last message failed ' + when + ': ' + (d.last.error || 'error');
    }
    return [String(d.type) + ' · ' + String(d.url), events, last + (d.pending ? ' · ' + d.pending + ' waiting' : '')];
  }

  function renderNotify(list) {
    const ul = $('n-list');
    const items = Array.isArray(list) ? list : [];
    $('n-empty').hidden = items.length > 0;
    $('n-test').disabled = items.length === 0;
    const lines = items.map(notifyLine);
    const key = JSON.stringify(lines);
    if (ul.dataset.key === key) return;
    ul.dataset.key = key;
    ul.replaceChildren(...items.map((d, i) => el('li', { class: d.last && !d.last.ok ? 'bad' : null },
      el('b', { text: lines[i][0] }), el('span', { class: 'events', text: ' — ' + lines[i][1] }),
      el('span', { class: 'last', text: ' — ' + lines[i][2] }))));
  }

  async function sendTestNotification() {
    const m = $('n-msg');
    const btn = $('n-test');
    btn.disabled = true;
    try {
      const d = await api('/api/notify/test', { method: 'POST' });
      m.textContent = 'Test notification queued for ' + d.destinations +
        (d.destinations === 1 ? ' destination' : ' destinations') + '; the result shows here.';
      m.className = 'msg ok';
    } catch (err) {
      m.textContent = 'Not sent: ' + err.message;
      m.className = 'msg bad';
    } finally {
      btn.disabled = false;
      refreshStats();
    }
  }

  function renderStats(s) {
    setText('s-total', String(s.syncs.total));
    setText('s-ok', String(s.syncs.ok));
    setText('s-failed', String(s.syncs.failed));
    setText('s-avg', s.syncs.ok ? fmtDuration(s.syncs.avg_duration_ms) : '–');
    setText('s-depth', String(s.queue.depth));
    setText('s-last', s.last_sync ? fmtAgo(Date.parse(s.last_sync)) : 'never');
    $('s-last').title = s.last_sync ? new Date(s.last_sync).toLocaleString() : '';

    renderTargets(s.targets);
    renderNotify(s.notifications);

    const r = s.rclone || {};
    if (!r.enabled) pill('st-rclone', 'off', 'not configured', 'RCLONE_RC_URL (or RCLONE_MOUNTS) is not set, or USE_RCLONE is false');
    else if (s.rclone_reachable) pill('st-rclone', 'up', 'answers', r.mounts + (r.mounts === 1 ? ' mount' : ' mounts'));
    else pill('st-rclone', 'down', 'no answer', r.error || 'rclone does not answer');

    setText('version', 'plex-servarr-sync ' + s.version);
  }

  /* ---- queue ---- */

  const STATE_LABEL = {
    unresolved: 'unresolved', waiting: 'waiting', aging: 'aging', held: 'held by anchor',
    ready: 'ready', checking: 'checking', syncing: 'syncing', retry: 'retrying', parked: 'parked',
  };
  const STATE_CLASS = {
    unresolved: 'warn', waiting: 'info', aging: 'info', held: 'warn', ready: 'info',
    checking: 'run', syncing: 'run', retry: 'warn', parked: 'bad', queued: 'info',
  };

  let queueData = null;       // last /api/queue answer
  let queueAt = 0;            // performance.now() when it arrived
  const retrying = new Set(); // ids whose retry is in flight

  function dueLeft(e) {
    if (e.due_in_ms === null || e.due_in_ms === undefined) return null;
    return Math.max(0, e.due_in_ms - (performance.now() - queueAt));
  }

  function stateDetail(e) {
    const left = dueLeft(e);
    switch (e.state) {
      case 'unresolved': return 'waiting for a media server\'s library list';
      case 'waiting': return 'debounce: scans ' + fmtIn(left);
      case 'aging': return (e.age_from === 'event' ? 'waiting from the event time (' + (e.age_reason || 'files not visible on this host') + ')'
        : 'files too new') + ': scans ' + fmtIn(left);
      case 'held': return (e.hold_reason || 'anchor missing') + '; re-check ' + fmtIn(left);
      case 'ready': return 'waiting for a free slot';
      case 'checking': return 'checking files and anchors';
      case 'syncing': return 'rclone, then the media servers';
      case 'retry': return 'retrying ' + fmtIn(left) + ' (' + e.attempts + ' failed)' +
        (e.last_error ? ': ' + e.last_error : '');
      case 'parked': return e.park_reason || e.last_error || 'configuration error';
      case 'queued': return 'queued just now';
      default: return '';
    }
  }

  async function retryEntry(id, button) {
    retrying.add(id);
    button.disabled = true;
    button.textContent = 'Retrying…';
    try {
      await api('/api/queue/' + encodeURIComponent(id) + '/retry', { method: 'POST' });
    } catch (err) {
      setMsg('Retry failed: ' + err.message, 'bad');
    } finally {
      retrying.delete(id);
      refreshQueue();
    }
  }

  /* ---- deliveries: what each media server is sent ---- */

  // Queue states and history results of one delivery: a word (never colour alone), a mark and
  // the badge colour.
  const DELIVERY = {
    pending: { text: 'pending', mark: '…', cls: 'info' },
    unresolved: { text: 'library unknown', mark: '?', cls: 'warn' },
    done: { text: 'done', mark: '✓', cls: 'ok' },
    ok: { text: 'ok', mark: '✓', cls: 'ok' },
    retry: { text: 'retrying', mark: '↻', cls: 'warn' },
    parked: { text: 'parked', mark: '✕', cls: 'bad' },
  };
  const HISTORY_RESULT = Object.assign({}, DELIVERY, {
    retry: { text: 'failed, retrying', mark: '↻', cls: 'warn' },
    pending: { text: 'not sent', mark: '–', cls: 'info' },
    unresolved: { text: 'not sent: library unknown', mark: '?', cls: 'warn' },
  });

  // One line per delivery: a chip "target · library · state" coloured by state, the error in
  // its tooltip (and readable by screen readers), and the path that server is sent when it
  // differs from the arr path.
  function deliveriesList(list, arrPath, status, table) {
    const ul = el('ul', { class: 'deliveries' });
    for (const d of list || []) {
      const st = d[status] || 'pending';
      const info = table[st] || { text: st, mark: '', cls: 'info' };
      const tip = [d.target + ' (' + kindLabel(d.kind) + ')', libraryText(d)];
      if (d.library && d.library_title && d.kind !== 'plex') tip.push('id ' + d.library);
      if (d.path) tip.push(d.path);
      if (d.error) tip.push(d.error);
      const chip = el('span', { class: 'dchip ' + info.cls, title: tip.join('\n') },
        el('span', { class: 'mark', 'aria-hidden': 'true', text: info.mark }), ' ',
        el('span', { class: 'dtarget', text: d.target }), ' · ',
        el('span', { class: 'dlib', text: libraryText(d) }), ' · ',
        el('span', { class: 'dstate', text: info.text }));
      const li = el('li', { dataset: { target: String(d.target), [status]: st } }, chip);
      if (d.error) li.append(el('span', { class: 'sr-only', text: ': ' + d.error }));
      if (d.path && d.path !== arrPath) li.append(el('span', { class: 'sub path', text: '→ ' + d.path }));
      ul.append(li);
    }
    return ul;
  }

  function queueRow(e) {
    const state = el('td', { class: 'state', 'data-label': 'State' },
      el('span', { class: 'badge ' + (STATE_CLASS[e.state] || 'info'), text: STATE_LABEL[e.state] || e.state }),
      el('span', { class: 'detail', text: stateDetail(e) }));
    if (e.state === 'parked' && e.can_retry !== false && e.id !== undefined) {
      const b = el('button', { type: 'button', class: 'small retry', 'data-id': e.id, text: 'Retry' });
      b.addEventListener('click', () => retryEntry(e.id, b));
      if (retrying.has(e.id)) { b.disabled = true; b.textContent = 'Retrying…'; }
      state.append(b);
    }
    const arrPath = e.path || e.arr_path || e.plex_path;
    const folder = el('td', { class: 'folder', 'data-label': 'Folder' }, el('span', { class: 'path', text: arrPath }));
    const servers = el('td', { class: 'servers', 'data-label': 'Servers' });
    if (Array.isArray(e.deliveries) && e.deliveries.length) servers.append(deliveriesList(e.deliveries, arrPath, 'state', DELIVERY));
    else servers.append(el('span', { class: 'sub', text: e.state === 'unresolved' || e.state === 'queued' ? 'not known yet' : 'none' }));
    const sources = (e.sources || []).join(', ');
    const events = el('td', { 'data-label': 'Events' },
      String(e.events === undefined ? 1 : e.events) + (e.events === 1 ? ' event' : ' events'),
      sources ? el('span', { class: 'sub', text: sources }) : null,
      e.dirty ? el('span', { class: 'sub', text: 'changed while syncing: runs again' }) : null);
    const left = dueLeft(e);
    const due = el('td', { class: 'due', 'data-label': 'Due', title: e.due ? new Date(e.due).toLocaleString() : '' },
      left === null ? (e.state === 'syncing' || e.state === 'checking' ? 'now' : '–') : fmtIn(left));
    return el('tr', { dataset: { id: e.id === undefined ? '' : String(e.id), state: e.state } },
      folder, servers, state, events, due);
  }

  function renderQueue() {
    const q = queueData;
    if (!q) return;
    const body = $('q-body');
    const rows = q.entries.map(queueRow);
    body.replaceChildren(...rows);
    $('q-empty').hidden = q.entries.length > 0;
    $('q-table').hidden = q.entries.length === 0;
    setText('q-count', q.depth ? String(q.depth) : '');
    const chips = [];
    for (const [state, n] of Object.entries(q.by_state || {})) {
      if (n > 0) chips.push(el('span', { class: 'chip ' + (STATE_CLASS[state] || ''), text: n + ' ' + (STATE_LABEL[state] || state) }));
    }
    $('q-states').replaceChildren(...chips);
    const more = $('q-more');
    more.hidden = !q.truncated;
    if (q.truncated) more.textContent = 'Showing ' + q.entries.length + ' of ' + q.matching + ' folders.';
  }

  // Countdowns tick between refreshes without asking the daemon.
  function tickQueue() {
    const q = queueData;
    if (!q) return;
    const rows = $('q-body').children;
    for (let i = 0; i < rows.length && i < q.entries.length; i++) {
      const e = q.entries[i];
      const left = dueLeft(e);
      if (left === null) continue;
      const due = rows[i].querySelector('.due');
      const detail = rows[i].querySelector('.detail');
      const t = fmtIn(left);
      if (due && due.textContent !== t) due.textContent = t;
      const d = stateDetail(e);
      if (detail && detail.textContent !== d) detail.textContent = d;
    }
  }

  /* ---- history ---- */

  const hist = { items: [], nextBefore: null, search: '', status: '' };

  const HISTORY_STATUS_CLASS = { ok: 'ok', warning: 'warn', skipped: 'info', retrying: 'warn', parked: 'bad', failed: 'bad' };

  function historyRow(h) {
    const attempts = h.attempts === undefined ? h.attempt : h.attempts;
    const status = el('td', { class: 'status', 'data-label': 'Status' },
      el('span', { class: 'badge ' + (HISTORY_STATUS_CLASS[h.status] || 'bad'), text: h.status }),
      attempts > 0 ? el('span', { class: 'sub attempts', text: attempts + (attempts === 1 ? ' attempt' : ' attempts') }) : null);
    const arrPath = h.path || h.arr_path || h.plex_path;
    const folder = el('td', { class: 'folder', 'data-label': 'Folder' }, el('span', { class: 'path', text: arrPath }));
    const servers = el('td', { class: 'servers', 'data-label': 'Servers' });
    if (Array.isArray(h.deliveries) && h.deliveries.length) servers.append(deliveriesList(h.deliveries, arrPath, 'result', HISTORY_RESULT));
    else servers.append(el('span', { class: 'sub', text: sectionText(h) === '–' ? 'none' : sectionText(h) }));
    const steps = 'rclone ' + (h.rclone || '–');
    const details = el('td', { class: 'details', 'data-label': 'Details' }, el('span', { text: steps }));
    if (h.error) details.append(el('span', { class: 'error', text: h.error }));
    const sources = (h.sources || []).join(', ') || '–';
    return el('tr', { dataset: { id: String(h.id), status: h.status } },
      el('td', { class: 'when', 'data-label': 'When', title: new Date(h.started).toLocaleString(), text: fmtTime(h.started) }),
      folder,
      servers,
      status,
      el('td', { 'data-label': 'Duration', text: fmtDuration(h.duration_ms) }),
      el('td', { 'data-label': 'Sources' }, sources,
        el('span', { class: 'sub', text: h.events + (h.events === 1 ? ' event' : ' events') })),
      details);
  }

  function renderHistory() {
    $('h-body').replaceChildren(...hist.items.map(historyRow));
    const none = hist.items.length === 0;
    $('h-empty').hidden = !none;
    $('h-empty').textContent = hist.search || hist.status ? 'Nothing matches.' : 'No sync has run yet.';
    $('h-table').hidden = none;
    $('h-more').hidden = hist.nextBefore === null;
  }

  function historyQuery(before) {
    const p = new URLSearchParams();
    p.set('limit', String(HISTORY_PAGE));
    if (hist.search) p.set('search', hist.search);
    if (hist.status) p.set('status', hist.status);
    if (before) p.set('before', String(before));
    return '/api/history?' + p.toString();
  }

  let historySeq = 0;
  async function refreshHistory() {
    const seq = ++historySeq;
    const want = { search: hist.search, status: hist.status };
    const data = await api(historyQuery(null));
    if (seq !== historySeq || want.search !== hist.search || want.status !== hist.status) return;
    // Keep the older pages already loaded: replace the newest page, keep what is below it.
    const newest = data.items;
    const lowest = newest.length ? newest[newest.length - 1].id : Infinity;
    const older = hist.items.filter((h) => h.id < lowest && data.next_before !== null);
    hist.items = newest.concat(older);
    if (older.length === 0) hist.nextBefore = data.next_before;
    renderHistory();
  }

  async function loadOlder() {
    if (hist.nextBefore === null) return;
    const btn = $('h-more');
    btn.disabled = true;
    try {
      const data = await api(historyQuery(hist.nextBefore));
      const have = new Set(hist.items.map((h) => h.id));
      hist.items = hist.items.concat(data.items.filter((h) => !have.has(h.id)));
      hist.nextBefore = data.next_before;
      renderHistory();
    } catch (err) {
      setMsg('Cannot load the history: ' + err.message, 'bad');
    } finally {
      btn.disabled = false;
    }
  }

  /* ---- manual trigger with preview ---- */

  let preview = null; // { path, data }

  function setMsg(text, kind) {
    const m = $('scan-msg');
    m.textContent = text;
    m.className = 'msg' + (kind ? ' ' + kind : '');
  }

  function renderPreview(d) {
    setText('pv-folder', d.arr_path);
    const dv = $('pv-deliveries');
    const deliveries = Array.isArray(d.deliveries) ? d.deliveries : [];
    if (deliveries.length) {
      const ul = el('ul', { class: 'deliveries preview-list' });
      for (const x of deliveries) {
        const kind = kindLabel(x.kind);
        const from = x.source === 'SECTION_MAPPING' ? 'from SECTION_MAPPING'
          : x.source === 'unresolved' ? 'waits for ' + kind + '\'s library list'
            : 'from ' + kind + '\'s library list';
        ul.append(el('li', { dataset: { target: String(x.target) } },
          el('div', null, el('b', { class: 'dtarget', text: x.target }),
            String(x.target).toLowerCase() === String(x.kind).toLowerCase() ? null : el('span', { class: 'sub inline', text: ' (' + kind + ')' }),
            ' → ', el('span', { class: 'dlib', text: libraryText(x) }), ' ',
            el('span', { class: 'sub inline', text: from }),
            x.outside_locations ? el('span', { class: 'badge warn', text: 'outside the library\'s locations' }) : null),
          el('div', { class: 'path', text: x.path })));
      }
      dv.replaceChildren(ul);
    } else {
      dv.textContent = targetCount === 0 ? 'none: no media server is configured'
        : d.resolution === 'unresolved' ? 'none known yet: no media server\'s library list has been read'
          : 'none: no media server\'s library holds it';
    }
    const host = $('pv-host');
    host.replaceChildren(el('span', { class: 'path', text: d.host.path }), ' ',
      d.host.exists === true ? el('span', { class: 'badge ok', text: 'exists' })
        : d.host.exists === false ? el('span', { class: 'badge warn', text: 'missing' + (d.host.error ? ' (' + d.host.error + ')' : '') })
          : el('span', { class: 'badge info', text: 'not checked' }));
    const rc = $('pv-rclone');
    if (d.rclone.mount) {
      rc.replaceChildren(
        el('div', null, 'mount ', el('span', { class: 'path', text: d.rclone.mount }),
          d.rclone.url ? el('span', { class: 'sub inline', text: ' via ' + d.rclone.url }) : null),
        el('div', null, 'VFS dir ', el('span', { class: 'path', text: d.rclone.vfs_dir === '' ? '(mount root)' : d.rclone.vfs_dir }),
          el('span', { class: 'sub inline', text: d.rclone.recursive ? ' recursive' : ' not recursive' })));
    } else {
      rc.textContent = d.rclone.reason || 'skipped';
    }
    $('pv-warnings').replaceChildren(...(d.warnings || []).map((w) => el('li', { text: w })));
    $('preview').hidden = false;
  }

  async function doPreview(path) {
    const scan = $('scan-btn');
    scan.disabled = true;
    preview = null;
    setMsg('Resolving…');
    try {
      const d = await api('/api/resolve?path=' + encodeURIComponent(path));
      if ($('path').value.trim() !== path) return;
      preview = { path, data: d };
      renderPreview(d);
      scan.disabled = !d.will_queue;
      setMsg(d.will_queue ? 'This is what a scan will do. Press "Scan now" to queue it.'
        : 'This folder would be skipped: no media server\'s library holds it.', d.will_queue ? '' : 'bad');
    } catch (err) {
      $('preview').hidden = true;
      setMsg(err.message, 'bad');
    }
  }

  // The scan's answer names each delivery's target and library only: the rest (kind, title,
  // path) comes from the preview of the same folder, until the next refresh brings the queue's view.
  function answeredDeliveries(e, path) {
    const known = preview && preview.path === path ? preview.data.deliveries || [] : [];
    return (e.deliveries || []).map((d) => {
      const p = known.find((k) => k.target === d.target && (k.library || null) === (d.library || null)) || {};
      return {
        target: d.target, kind: d.kind || p.kind, library: d.library, library_title: d.library_title || p.library_title || null,
        path: d.path || (e.merged_into ? null : p.path), state: d.state || (d.library === null ? 'unresolved' : 'pending'), error: null,
      };
    });
  }

  async function doScan(path) {
    const scan = $('scan-btn');
    scan.disabled = true;
    setMsg('Queueing…');
    try {
      const d = await api('/api/scans', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ path }),
      });
      const shown = (d.entries || []).map((e) => e.merged_into ? e.arr_path + ' (merged into ' + e.merged_into + ')' : e.arr_path);
      setMsg((d.status === 'unresolved' ? 'Queued, waiting for a media server\'s library list: ' : 'Queued: ') + shown.join(', '), 'ok');
      // Show it at once; the refresh below replaces these rows with the daemon's view.
      if (queueData) {
        const known = new Set(queueData.entries.map((e) => e.id));
        for (const e of d.entries || []) {
          if (e.id !== undefined && known.has(e.id)) continue;
          queueData.entries.unshift({
            id: e.id, path: e.merged_into || e.arr_path, plex_path: e.plex_path, arr_path: e.arr_path,
            section: e.section, section_title: null, deliveries: answeredDeliveries(e, path),
            state: e.state || 'queued', events: 1, sources: ['manual'], manual: true, due_in_ms: null, attempts: 0,
          });
        }
        queueAt = queueAt || performance.now();
        renderQueue();
      }
      refreshQueue();
      refreshStats();
    } catch (err) {
      setMsg('Not queued: ' + err.message, 'bad');
    } finally {
      scan.disabled = !(preview && preview.path === $('path').value.trim() && preview.data.will_queue);
    }
  }

  /* ---- refresh loops ---- */

  async function refreshQueue() {
    const d = await api('/api/queue');
    queueData = d;
    queueAt = performance.now();
    renderQueue();
  }

  async function refreshStats() {
    renderStats(await api('/api/stats'));
  }

  function loop(fn, every) {
    let timer = null;
    const run = async () => {
      timer = null;
      try {
        await fn();
        live(true, 'live');
      } catch (err) {
        live(false, err.status === 401 ? 'signed out' : 'offline');
      }
      if (!document.hidden) timer = setTimeout(run, every);
    };
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && timer === null) run();
    });
    run();
  }

  /* ---- wiring ---- */

  function init() {
    const form = $('scan-form');
    const input = $('path');
    const previewBtn = $('preview-btn');
    const scanBtn = $('scan-btn');
    previewBtn.hidden = false;
    scanBtn.disabled = true;
    $('n-test').addEventListener('click', sendTestNotification);

    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const path = input.value.trim();
      if (!path) { setMsg('Enter a folder path.', 'bad'); return; }
      const fresh = preview && preview.path === path;
      if (ev.submitter === scanBtn && fresh && preview.data.will_queue) doScan(path);
      else doPreview(path);
    });
    input.addEventListener('input', () => {
      if (preview && preview.path !== input.value.trim()) {
        scanBtn.disabled = true;
        setMsg('');
      }
    });

    let searchTimer = null;
    const filtersChanged = () => {
      hist.search = $('h-search').value.trim();
      hist.status = $('h-status').value;
      hist.items = [];
      hist.nextBefore = null;
      refreshHistory().catch((err) => setMsg('Cannot load the history: ' + err.message, 'bad'));
    };
    $('h-search').addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(filtersChanged, 250);
    });
    $('h-status').addEventListener('change', filtersChanged);
    $('h-filters').addEventListener('submit', (ev) => { ev.preventDefault(); filtersChanged(); });
    $('h-more').addEventListener('click', loadOlder);

    loop(async () => { await Promise.all([refreshQueue(), refreshStats()]); }, QUEUE_EVERY);
    loop(refreshHistory, HISTORY_EVERY);
    setInterval(() => {
      tickQueue();
      if (lastOk && Date.now() - lastOk > 15000) live(false, 'stale');
    }, 1000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
}());
