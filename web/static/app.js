/* plex-servarr-sync page: first-run help, sources, queue, history, stats and the manual trigger
 * with its preview. Plain script, no dependencies. Every value from the daemon is put into the
 * page as text (textContent, never innerHTML), so a folder named <img src=x onerror=alert(1)>
 * shows as text. Every address is relative to the page (fetch('api/queue'), never '/api/queue'),
 * so the page works under a reverse proxy's prefix (URL_BASE). */
'use strict';

(function () {
  const QUEUE_EVERY = 2000;     // ms between queue, stats and sources refreshes
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

  // The rows of a list, keyed (data-key): a row is rebuilt only when what it shows changed
  // (sigOf) and moved only when its place changed, so a refresh leaves a focused button alone.
  // When the focused row is rebuilt, its new twin's control with the same data-focus takes the
  // focus; when it is gone, the same control in the row that took its place, else `fallback`.
  function reconcile(body, items, keyOf, sigOf, build, fallback) {
    const active = document.activeElement;
    const had = active && active !== document.body && body.contains(active) ? active : null;
    const focusRow = had ? had.closest('[data-key]') : null;
    const focusAt = focusRow ? Array.prototype.indexOf.call(body.children, focusRow) : -1;
    const focusCtl = had ? had.dataset.focus : undefined;
    const fresh = new Map(items.map((it) => [keyOf(it), it]));
    for (const n of Array.from(body.children)) if (!fresh.has(n.dataset.key)) n.remove();
    const old = new Map(Array.from(body.children, (n) => [n.dataset.key, n]));
    let prev = null;
    for (const [key, it] of fresh) {
      const sig = sigOf(it);
      let n = old.get(key);
      if (!n || n.pssSig !== sig) {
        const m = build(it);
        m.dataset.key = key;
        m.pssSig = sig;
        if (n) n.replaceWith(m);
        n = m;
      }
      n.pssItem = it;
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== n) body.insertBefore(n, want);
      prev = n;
    }
    if (!had || document.activeElement === had) return;
    const pick = (row) => row && (focusCtl ? row.querySelector('[data-focus="' + focusCtl + '"]:not(:disabled)') : null);
    const twin = focusRow && focusRow.isConnected ? focusRow : body.querySelector('[data-key="' + CSS.escape(focusRow ? focusRow.dataset.key : '') + '"]');
    const target = (had.isConnected ? had : null) || pick(twin) || pick(body.children[focusAt]) ||
      pick(body.children[focusAt - 1]) || fallback;
    if (target) target.focus({ preventScroll: true });
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

  // "3 min ago": whole units only (seconds under a minute, then minutes, hours, days).
  function fmtAgo(wallMs) {
    const s = Math.floor((Date.now() - wallMs) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 48 * 3600) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' days ago';
  }

  // A relative time ("3 min ago") that the clock keeps current, the full date in its tooltip.
  function timeAgo(at) {
    const ms = typeof at === 'number' ? at : Date.parse(at);
    if (!Number.isFinite(ms)) return el('span', { text: '–' });
    return el('time', { class: 'ago', datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString(),
      dataset: { at: String(ms) }, text: fmtAgo(ms) });
  }

  function tickTimes() {
    for (const t of document.querySelectorAll('time.ago')) {
      const text = fmtAgo(Number(t.dataset.at));
      if (t.textContent !== text) t.textContent = text;
    }
  }

  function sectionText(o) {
    if (o.section === null || o.section === undefined) return '–';
    return o.section_title ? o.section_title + ' (' + o.section + ')' : String(o.section);
  }

  const KIND_LABEL = { plex: 'Plex', jellyfin: 'Jellyfin', emby: 'Emby' };
  const kindLabel = (k) => KIND_LABEL[k] || k || 'media server';
  const APP_LABEL = {
    sonarr: 'Sonarr', radarr: 'Radarr', lidarr: 'Lidarr', readarr: 'Readarr', manual: 'Manual trigger',
  };
  const appLabel = (a) => APP_LABEL[a] || String(a);

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

  // `path` is relative ('api/queue'): it resolves against the page's own address.
  async function api(path, opts) {
    const init = Object.assign({ credentials: 'same-origin', cache: 'no-store', headers: {} }, opts || {});
    init.headers = Object.assign({ Accept: 'application/json' }, init.headers);
    const res = await fetch(path, init);
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok && res.status !== 202) {
      throw new ApiError(res.status, (body && (body.message || body.error)) || ('HTTP ' + res.status));
    }
    return body;
  }

  /* ---- live indicator and the pause button ---- */

  let lastOk = 0;
  let paused = false;
  function live(ok, text) {
    const n = $('st-live');
    n.className = 'pill ' + (paused ? 'off' : ok ? 'up' : 'down');
    n.querySelector('b').textContent = paused ? 'paused' : text;
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
      const d = await api('api/notify/test', { method: 'POST' });
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
    renderSetup(s);
    renderNotify(s.notifications);

    const r = s.rclone || {};
    if (!r.enabled) pill('st-rclone', 'off', 'not configured', 'RCLONE_RC_URL (or RCLONE_MOUNTS) is not set, or USE_RCLONE is false');
    else if (s.rclone_reachable) pill('st-rclone', 'up', 'answers', r.mounts + (r.mounts === 1 ? ' mount' : ' mounts'));
    else pill('st-rclone', 'down', 'no answer', r.error || 'rclone does not answer');

    setText('version', 'plex-servarr-sync ' + s.version);
  }

  /* ---- first run ---- */

  // Without any media server the page says what to set, in which file, and how to reload.
  // /api/stats' "setup" names the file and the reload command for this install (systemd, a
  // container or a plain process); a daemon without it gets the general words.
  function renderSetup(s) {
    const setup = s.setup && typeof s.setup === 'object' ? s.setup : null;
    const targets = setup && typeof setup.targets === 'number' ? setup.targets
      : Array.isArray(s.targets) ? s.targets.length : null;
    const panel = $('setup');
    panel.hidden = targets !== 0;
    if (panel.hidden || !setup) return;
    const where = $('setup-where');
    const key = JSON.stringify([setup.env_file, setup.reload]);
    if (where.dataset.key === key) return;
    where.dataset.key = key;
    if (setup.env_file) where.replaceChildren(el('code', { class: 'path', text: setup.env_file }));
    else where.textContent = 'the environment (no configuration file was read; --env-file PATH names one)';
    if (setup.reload) setText('setup-reload', String(setup.reload));
  }

  /* ---- sources: what each app sent last, and its webhook address ---- */

  // Where each app sends its webhooks: the source's "path" less URL_BASE, made absolute from
  // the page's own address. The page is served at URL_BASE's root, so document.baseURI is the
  // address the browser used, with whatever prefix a proxy put before it.
  const SOURCE_PATH = {
    sonarr: '/webhook/sonarr', radarr: '/webhook/radarr', lidarr: '/webhook/lidarr', readarr: '/webhook/readarr',
    manual: '/triggers/manual',
  };
  const ARR_APPS = ['sonarr', 'radarr', 'lidarr', 'readarr'];
  let urlBase = '';               // /api/stats' setup.url_base
  let webhookCredentials = false; // the apps must send WEBHOOK_USER / WEBHOOK_PASS
  function webhookUrl(p) {
    let rel = String(p);
    if (urlBase && rel.startsWith(urlBase + '/')) rel = rel.slice(urlBase.length);
    return new URL(rel.replace(/^\/+/, ''), document.baseURI).href;
  }

  // A daemon before /api/sources has no "setup" in /api/stats either: it is not asked (a 404
  // would show in the browser's console), and the panel shows the addresses only.
  let sourcesMissing = false;

  function copyButton(text, app) {
    if (!navigator.clipboard || !window.isSecureContext) return null;
    const b = el('button', { type: 'button', class: 'secondary small copy', 'data-focus': 'copy',
      'aria-label': 'Copy ' + appLabel(app) + '\'s webhook address', text: 'Copy' });
    const said = (words) => { b.textContent = words; setTimeout(() => { b.textContent = 'Copy'; }, 3000); };
    b.addEventListener('click', () => {
      navigator.clipboard.writeText(text).then(() => said('Copied'), () => said('Not copied: select it'));
    });
    return b;
  }

  function sourceRow(src) {
    const app = String(src.app);
    const addr = typeof src.path === 'string' ? src.path : SOURCE_PATH[app];
    const address = el('td', { class: 'address', 'data-label': 'Address' });
    if (addr) address.append(el('div', { class: 'addr' }, el('span', { class: 'path url', text: webhookUrl(addr) }), copyButton(webhookUrl(addr), app)));
    else address.append(el('span', { class: 'sub', text: '–' }));
    const refused = src.last_refused;
    if (refused) {
      address.append(el('span', { class: 'refused' }, el('span', { class: 'badge bad', text: 'refused ' + refused.status }), ' ',
        timeAgo(refused.at), ': ' + (refused.reason || 'refused')));
    }
    const ev = src.last_event;
    const last = el('td', { class: ev ? 'last' : 'last none', 'data-label': 'Last event' });
    if (ev) {
      last.append(el('b', { class: 'etype', text: String(ev.type || 'event') }),
        ev.title ? el('span', { class: 'title', text: ' ' + ev.title }) : null, ' · ', timeAgo(ev.at));
    } else {
      last.append(el('span', { class: 'sub', text: sourcesMissing ? 'not reported by this daemon' : 'nothing received yet' }));
    }
    const test = el('td', { class: 'test', 'data-label': 'Test' });
    if (src.last_test_at) test.append(el('span', { class: 'badge ok', text: 'arrived' }), ' ', timeAgo(src.last_test_at));
    else if (ARR_APPS.includes(app) && !sourcesMissing) {
      test.append(el('span', { class: 'sub' }, 'no Test yet', el('span', { class: 'hint', text: ': press Test in ' + appLabel(app) })));
    }
    else test.append(el('span', { class: 'sub', text: '–' }));
    const events = typeof src.events === 'number' ? src.events : null;
    return el('tr', { dataset: { app, tested: src.last_test_at ? 'yes' : 'no', refused: refused ? 'yes' : 'no' } },
      el('th', { scope: 'row', class: 'app', 'data-label': 'App' }, appLabel(app),
        events === null ? null : el('span', { class: 'sub', text: events + (events === 1 ? ' event' : ' events') })),
      address, last, test);
  }

  function renderSources(list) {
    const rows = Array.isArray(list) ? list.slice() : [];
    for (const app of ARR_APPS) if (!rows.some((s) => s.app === app)) rows.push({ app, last_event: null, last_test_at: null });
    reconcile($('src-body'), rows, (s) => String(s.app), (s) => JSON.stringify(s) + sourcesMissing + urlBase, sourceRow, null);
    const note = $('src-note');
    const text = sourcesMissing ? 'This daemon does not report what each app sent (no /api/sources): its log does.'
      : webhookCredentials ? 'Webhooks need WEBHOOK_USER and WEBHOOK_PASS: enter them as the webhook\'s Username and Password in each app.' : '';
    note.hidden = !text;
    if (note.textContent !== text) note.textContent = text;
  }

  async function refreshSources(stats) {
    if (stats && stats.setup) {
      webhookCredentials = stats.setup.webhook_credentials === true;
      urlBase = typeof stats.setup.url_base === 'string' ? stats.setup.url_base : '';
    }
    if (!sourcesMissing && stats && stats.setup === undefined) {
      sourcesMissing = true;
      renderSources([]);
    }
    if (sourcesMissing) return;
    try {
      const d = await api('api/sources');
      renderSources(d && d.sources);
    } catch (err) {
      if (err.status !== 404) throw err;
      sourcesMissing = true;
      renderSources([]);
    }
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
  // What an event did to the folder, as the *arr apps say it.
  const EVENT_CLASS = { import: 'ok', upgrade: 'run', rename: 'info', delete: 'bad', manual: 'info', other: 'info' };
  // States a person may act on: "Scan now" skips the wait; "Cancel" drops the entry. A folder
  // being synced is left alone (the daemon answers 409).
  const CAN_SCAN_NOW = new Set(['waiting', 'aging', 'held', 'retry']);
  const CAN_CANCEL = new Set(['unresolved', 'waiting', 'aging', 'held', 'ready', 'retry', 'parked', 'queued']);

  let queueData = null;       // last /api/queue answer
  let queueAt = 0;            // performance.now() when it arrived
  const busy = new Set();     // "id:action" of the requests in flight

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

  // What an entry or a history row is, as people know it: the title from the *arr payload
  // ("The Expanse S02E05 · Doors & Corners"), else the folder.
  const whatOf = (x) => x.title || x.path || x.arr_path || 'folder';

  function setQueueMsg(text, kind) {
    const m = $('q-msg');
    m.textContent = text;
    m.className = 'msg' + (kind ? ' ' + kind : '');
  }

  // One action on one entry (POST api/queue/{id}/{action}); the row's button stays disabled
  // while it runs, then the queue is asked again.
  async function entryAction(e, action, words) {
    const key = e.id + ':' + action;
    if (busy.has(key)) return;
    busy.add(key);
    renderQueue();
    try {
      await api('api/queue/' + encodeURIComponent(e.id) + '/' + action, { method: 'POST' });
      setQueueMsg(words.done + ': ' + whatOf(e), 'ok');
    } catch (err) {
      setQueueMsg(words.failed + ' (' + whatOf(e) + '): ' + err.message, 'bad');
    } finally {
      busy.delete(key);
      refreshQueue().catch(() => {});
    }
  }

  const ACTIONS = {
    retry: { label: 'Retry', busy: 'Retrying…', done: 'Retrying', failed: 'Retry failed' },
    now: { label: 'Scan now', busy: 'Starting…', done: 'Scanning now', failed: 'Not started' },
    cancel: { label: 'Cancel', busy: 'Cancelling…', done: 'Cancelled', failed: 'Not cancelled' },
  };

  function actionButton(e, action) {
    const a = ACTIONS[action];
    const inFlight = busy.has(e.id + ':' + action);
    const b = el('button', { type: 'button', class: 'small ' + action + (action === 'cancel' ? ' secondary' : ''),
      'data-id': e.id, 'data-focus': action, 'aria-label': a.label + ': ' + whatOf(e), text: inFlight ? a.busy : a.label });
    b.disabled = inFlight;
    b.addEventListener('click', () => entryAction(e, action, a));
    return b;
  }

  // The actions an entry offers. Cancel and Scan now come with the daemon's "event" field (the
  // same release added their endpoints); an older daemon gets Retry only.
  function entryActions(e) {
    const td = el('td', { class: 'actions', 'data-label': 'Actions' });
    if (e.id === undefined || e.id === null) return td;
    if (e.state === 'parked' && e.can_retry !== false) td.append(actionButton(e, 'retry'));
    if (e.event === undefined) return td;
    if (CAN_SCAN_NOW.has(e.state)) td.append(actionButton(e, 'now'));
    if (CAN_CANCEL.has(e.state)) td.append(actionButton(e, 'cancel'));
    return td;
  }

  async function retryParked() {
    const b = $('q-retry-parked');
    b.disabled = true;
    try {
      const d = await api('api/retry-parked', { method: 'POST' });
      const n = d && typeof d.retried === 'number' ? d.retried : 0;
      setQueueMsg('Retrying ' + n + (n === 1 ? ' parked folder' : ' parked folders'), 'ok');
    } catch (err) {
      setQueueMsg('Retry failed: ' + err.message, 'bad');
    } finally {
      b.disabled = false;
      refreshQueue().catch(() => {});
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


  // The "what" cell of a queue entry or a history row: the title and the event's kind first,
  // then the folder (as Sonarr/Radarr see it), then where it came from.
  // Without a title (a manual scan), the folder leads.
  function whatCell(x, extra) {
    const kind = x.event ? String(x.event) : null;
    const path = el('span', { class: 'path', text: x.path || x.arr_path || x.plex_path });
    const head = el('span', { class: 'head' }, x.title ? el('span', { class: 'title', text: x.title }) : path,
      kind ? el('span', { class: 'badge ev ' + (EVENT_CLASS[kind] || 'info'), text: kind }) : null);
    const events = x.events === undefined ? 1 : x.events;
    const from = [(x.sources || []).join(', '), events + (events === 1 ? ' event' : ' events')].filter(Boolean).join(' · ');
    return el('td', { class: 'folder what', 'data-label': 'What' }, head, x.title ? path : null,
      el('span', { class: 'sub from', text: from }), extra);
  }

  function queueRow(e) {
    const state = el('td', { class: 'state', 'data-label': 'State' },
      el('span', { class: 'badge ' + (STATE_CLASS[e.state] || 'info'), text: STATE_LABEL[e.state] || e.state }),
      el('span', { class: 'detail', text: stateDetail(e) }));
    const arrPath = e.path || e.arr_path || e.plex_path;
    const servers = el('td', { class: 'servers', 'data-label': 'Servers' });
    if (Array.isArray(e.deliveries) && e.deliveries.length) servers.append(deliveriesList(e.deliveries, arrPath, 'state', DELIVERY));
    else servers.append(el('span', { class: 'sub', text: e.state === 'unresolved' || e.state === 'queued' ? 'not known yet' : 'none' }));
    const left = dueLeft(e);
    const due = el('td', { class: 'due', 'data-label': 'Due', title: e.due ? new Date(e.due).toLocaleString() : '' },
      left === null ? (e.state === 'syncing' || e.state === 'checking' ? 'now' : '–') : fmtIn(left));
    return el('tr', { dataset: { id: e.id === undefined ? '' : String(e.id), state: e.state } },
      whatCell(e, e.dirty ? el('span', { class: 'sub', text: 'changed while syncing: runs again' }) : null),
      servers, state, due, entryActions(e));
  }

  // What a row shows, less what the clock changes (the countdown ticks in place).
  function queueSig(e) {
    const id = String(e.id);
    const inFlight = Object.keys(ACTIONS).filter((a) => busy.has(id + ':' + a)).join();
    return JSON.stringify(Object.assign({}, e, { due_in_ms: null })) + inFlight;
  }

  function renderQueue() {
    const q = queueData;
    if (!q) return;
    const keyOf = (e) => e.id === undefined || e.id === null ? 'new:' + (e.arr_path || e.path) : String(e.id);
    reconcile($('q-body'), q.entries, keyOf, queueSig, queueRow, $('queue-h'));
    $('q-empty').hidden = q.entries.length > 0;
    $('q-table').hidden = q.entries.length === 0;
    setText('q-count', q.depth ? String(q.depth) : '');
    const chips = [];
    for (const [state, n] of Object.entries(q.by_state || {})) {
      if (n > 0) chips.push(el('span', { class: 'chip ' + (STATE_CLASS[state] || ''), text: n + ' ' + (STATE_LABEL[state] || state) }));
    }
    const key = JSON.stringify(q.by_state || {});
    if ($('q-states').dataset.key !== key) {
      $('q-states').dataset.key = key;
      $('q-states').replaceChildren(...chips);
    }
    const parked = (q.by_state && q.by_state.parked) || 0;
    const all = $('q-retry-parked');
    const show = parked > 0 && q.entries.some((e) => e.event !== undefined);
    if (!show && document.activeElement === all) $('queue-h').focus({ preventScroll: true });
    all.hidden = !show;
    const more = $('q-more');
    more.hidden = !q.truncated;
    if (q.truncated) more.textContent = 'Showing ' + q.entries.length + ' of ' + q.matching + ' folders.';
  }

  // Countdowns tick between refreshes without asking the daemon.
  function tickQueue() {
    for (const row of $('q-body').children) {
      const e = row.pssItem;
      if (!e || dueLeft(e) === null) continue;
      const due = row.querySelector('.due');
      const detail = row.querySelector('.detail');
      const t = fmtIn(dueLeft(e));
      if (due && due.textContent !== t) due.textContent = t;
      const d = stateDetail(e);
      if (detail && detail.textContent !== d) detail.textContent = d;
    }
  }

  /* ---- history ---- */

  const hist = { items: [], nextBefore: null, search: '', status: '' };

  const HISTORY_STATUS_CLASS = { ok: 'ok', warning: 'warn', skipped: 'info', retrying: 'warn', parked: 'bad', failed: 'bad', cancelled: 'info' };

  function historyRow(h) {
    const attempts = h.attempts === undefined ? h.attempt : h.attempts;
    const status = el('td', { class: 'status', 'data-label': 'Status' },
      el('span', { class: 'badge ' + (HISTORY_STATUS_CLASS[h.status] || 'bad'), text: h.status }),
      el('span', { class: 'sub' },
        attempts > 0 ? el('span', { class: 'attempts', text: attempts + (attempts === 1 ? ' attempt' : ' attempts') }) : null,
        attempts > 0 ? ' · ' : null, el('span', { class: 'duration', text: fmtDuration(h.duration_ms) })));
    const arrPath = h.path || h.arr_path || h.plex_path;
    const servers = el('td', { class: 'servers', 'data-label': 'Servers' });
    if (Array.isArray(h.deliveries) && h.deliveries.length) servers.append(deliveriesList(h.deliveries, arrPath, 'result', HISTORY_RESULT));
    else servers.append(el('span', { class: 'sub', text: sectionText(h) === '–' ? 'none' : sectionText(h) }));
    const details = el('td', { class: 'details', 'data-label': 'Details' }, el('span', { text: 'rclone ' + (h.rclone || '–') }));
    if (h.error) details.append(el('span', { class: 'error', text: h.error }));
    return el('tr', { dataset: { id: String(h.id), status: h.status } },
      el('td', { class: 'when', 'data-label': 'When' }, timeAgo(h.started)),
      whatCell(h, null), servers, status, details);
  }

  function renderHistory() {
    reconcile($('h-body'), hist.items, (h) => String(h.id), (h) => JSON.stringify(h), historyRow, $('history-h'));
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
    return 'api/history?' + p.toString();
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
      const d = await api('api/resolve?path=' + encodeURIComponent(path));
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
      const d = await api('api/scans', {
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


  /* ---- refresh loops, and pausing them ---- */

  async function refreshQueue() {
    const d = await api('api/queue');
    queueData = d;
    queueAt = performance.now();
    renderQueue();
  }

  async function refreshStats() {
    const s = await api('api/stats');
    renderStats(s);
    return s;
  }

  const loops = [];

  // fn every `every` ms while the page is visible and not paused; kick() runs it at once.
  function loop(fn, every) {
    let timer = null;
    let running = false;
    const run = async () => {
      clearTimeout(timer);
      timer = null;
      if (running || paused) return;
      running = true;
      try {
        await fn();
        live(true, 'live');
      } catch (err) {
        live(false, err.status === 401 ? 'signed out' : 'offline');
      }
      running = false;
      if (!document.hidden && !paused) timer = setTimeout(run, every);
    };
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && timer === null) run();
    });
    loops.push({ kick: run });
    run();
  }

  // The refresh can be paused (reading a long list, a screen reader): nothing changes on the
  // page until it resumes, the clocks included, except what a person's own action asks for.
  function togglePause() {
    paused = !paused;
    const b = $('pause');
    b.setAttribute('aria-pressed', paused ? 'true' : 'false');
    b.textContent = paused ? 'Resume updates' : 'Pause updates';
    live(true, 'live');
    if (!paused) for (const l of loops) l.kick();
  }

  /* ---- wiring ---- */

  function initScanForm() {
    const form = $('scan-form');
    const input = $('path');
    const previewBtn = $('preview-btn');
    const scanBtn = $('scan-btn');
    previewBtn.hidden = false;
    scanBtn.disabled = true;
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
  }

  function initHistoryFilters() {
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
  }

  function init() {
    initScanForm();
    initHistoryFilters();
    $('n-test').addEventListener('click', sendTestNotification);
    $('q-retry-parked').addEventListener('click', retryParked);
    $('pause').hidden = false;
    $('pause').addEventListener('click', togglePause);
    renderSources([]);

    loop(async () => { await Promise.all([refreshQueue(), refreshStats().then(refreshSources)]); }, QUEUE_EVERY);
    loop(refreshHistory, HISTORY_EVERY);
    setInterval(() => {
      if (paused) return;
      tickQueue();
      tickTimes();
      if (lastOk && Date.now() - lastOk > 15000) live(false, 'stale');
    }, 1000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
}());
