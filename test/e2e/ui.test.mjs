// End-to-end test of the web page in a real browser: Debian's Chromium, driven by playwright-core.
//
// It starts two media servers (the Plex double and the Jellyfin double, each a target of its
// own) and the daemon on free ports in a temp dir, then:
//   1. without credentials, the page answers 401 (with a Basic challenge);
//   2. with them, the page loads, shows a pill per target and a pending entry (a Sonarr webhook
//      for a folder named <img src=x onerror=alert(1)>, which must show as text) with the state
//      of its delivery to each target;
//   3. it previews a folder (what each target would receive: library, where it came from and
//      path; host path, rclone), then "Scan now" queues it and the queue shows it at once;
//   4. after both doubles answered the scan, the history shows it as ok with each delivery's
//      result; once the Jellyfin double stops, its pill says so;
//   5. every request the page made went to the daemon, and the console shows no error.
// Screenshots of the desktop (1280x800) and phone (390x844) layouts go to screenshot.png and
// screenshot-phone.png, next to this file unless PSS_SCREENSHOT_DIR names another directory
// (CTest sets it to the build tree, so test runs leave the committed images alone).
//
// Environment: PSS_BINARY (the daemon; default ../../build/plex-servarr-sync), PSS_CHROMIUM
// (default /usr/bin/chromium), PSS_FIXTURES_DIR, PSS_SCREENSHOT_DIR, PSS_KEEP_TMP=1 keeps the temp dir.
// Exits non-zero on failure.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BINARY = process.env.PSS_BINARY || path.join(ROOT, 'build', 'plex-servarr-sync');
const CHROMIUM = process.env.PSS_CHROMIUM || '/usr/bin/chromium';
const PLEX_DOUBLE = path.join(ROOT, 'test', 'integration', 'plexdouble.py');
const MB_DOUBLE = path.join(ROOT, 'test', 'integration', 'mbdouble.py');
const FIXTURES = process.env.PSS_FIXTURES_DIR || path.join(ROOT, 'test', 'fixtures');
const PYTHON = process.env.PYTHON || 'python3';
const SHOT_DIR = process.env.PSS_SCREENSHOT_DIR || HERE;

const USER = 'admin';
const PASS = 'e2e-manual-pass-7Qw';
const PLEX_TOKEN = 'e2e-plex-token';
const JELLYFIN_TOKEN = 'e2e-jellyfin-token';
const HOSTILE = '<img src=x onerror=alert(1)>';
const STEP_TIMEOUT = 30000;

const cleanups = [];
let failed = false;

function log(...a) { console.log('[e2e]', ...a); }

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  log('ok:', what);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, what, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what + ' (last: ' + String(last) + ')');
    await sleep(100);
  }
}

function touch(file) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'x');
}

// A child process whose output goes to a log file; stopped with SIGTERM at the end.
function start(name, cmd, args, opts, logFile) {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, Object.assign({ stdio: ['ignore', out, out] }, opts));
  fs.closeSync(out);
  const exited = once(child, 'exit');
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(t);
    }
  });
  return { child, exited, name, logFile };
}

function tail(file, n = 60) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

async function main() {
  check(fs.existsSync(BINARY), 'daemon binary exists (' + BINARY + ')');
  fs.mkdirSync(SHOT_DIR, { recursive: true });
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pss-e2e-')));
  cleanups.push(async () => {
    if (process.env.PSS_KEEP_TMP || failed) log('kept', tmp);
    else fs.rmSync(tmp, { recursive: true, force: true });
  });
  // Paths as in a real setup: Sonarr/Radarr see /tv and /movies, Plex sees /data/media/...,
  // this host reaches the files under the temp dir, rclone mounts the cloud at /mnt/cloud.
  const media = path.join(tmp, 'media');
  const arr = (p) => p;                                   // arr terms
  const hostOf = (p) => path.join(media, p.replace(/^\//, ''));
  const plexOf = (p) => '/data/media' + p;
  const jellyfinOf = (p) => '/srv/jellyfin' + p;
  const hostileFolder = arr('/tv/' + HOSTILE + '/Season 01');
  const otherFolder = arr('/tv/The Expanse (2015)/Season 02');
  const brokenFolder = arr('/tv/Broken Show (2019)/Season 01');
  const film = arr('/movies/Amélie (2001)');
  touch(hostOf(hostileFolder + '/Episode S01E01.mkv'));
  touch(hostOf(otherFolder + '/The Expanse (2015) - S02E05 - Home.mkv'));
  touch(hostOf(brokenFolder + '/Broken Show (2019) - S01E01.mkv'));
  touch(hostOf(film + '/Amélie (2001) [Bluray-1080p].mkv'));

  // ---- a stand-in for rclone's remote control: OK for every folder but "Broken Show", which
  // gets rclone's "no VFS found" error (a configuration error: the entry is parked) ----
  const rcCalls = [];
  const rc = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      let input = {};
      try { input = JSON.parse(body || '{}'); } catch { input = {}; }
      rcCalls.push({ path: req.url, dir: input.dir });
      const send = (status, obj) => {
        const text = JSON.stringify(obj);
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (req.method !== 'POST') return send(405, { error: 'method not allowed', status: 405 });
      if (req.url === '/rc/noop') return send(200, input);
      if (req.url === '/vfs/forget') return send(200, { forgotten: input.dir ? [input.dir] : [] });
      if (req.url === '/vfs/refresh') {
        if (String(input.dir || '').includes('Broken Show')) {
          return send(500, { error: 'no VFS found with name "cloud:"', input, path: 'vfs/refresh', status: 500 });
        }
        return send(200, { result: { [input.dir || '']: 'OK' } });
      }
      return send(404, { error: "couldn't find method", status: 404 });
    });
  });
  rc.listen(0, '127.0.0.1');
  await once(rc, 'listening');
  cleanups.push(() => new Promise((r) => { rc.closeAllConnections(); rc.close(() => r()); }));
  const rcUrl = 'http://127.0.0.1:' + rc.address().port;
  const refreshes = (needle) => rcCalls.filter((c) => c.path === '/vfs/refresh' && String(c.dir).includes(needle));

  // ---- the Plex double: each refresh takes 2 s, so a scan is seen while it runs ----
  const sectionsFile = path.join(tmp, 'sections.json');
  fs.writeFileSync(sectionsFile, JSON.stringify([
    { key: '1', type: 'show', title: 'TV Shows', locations: ['/data/media/tv'] },
    { key: '2', type: 'movie', title: 'Movies', locations: ['/data/media/movies'] },
  ]));
  const plexPort = await freePort();
  const plexLog = path.join(tmp, 'plex.log');
  start('plex double', PYTHON, [PLEX_DOUBLE, '--port', String(plexPort), '--token', PLEX_TOKEN,
    '--sections', sectionsFile, '--delay', '2', '--log'], {}, plexLog);
  await waitFor(() => fs.readFileSync(plexLog, 'utf8').includes('listening on'), 'the Plex double');
  const plexScans = () => fs.readFileSync(plexLog, 'utf8').split('\n')
    .map((l) => /^\S+ refresh section=(\S+) path=(.*)$/.exec(l)).filter(Boolean)
    .map((m) => ({ section: m[1], path: m[2] }));

  // ---- the Jellyfin double (Jellyfin 12: only the new authorization form), a second target
  // that sees the media under /srv/jellyfin ----
  const librariesFile = path.join(tmp, 'libraries.json');
  fs.writeFileSync(librariesFile, JSON.stringify([
    { Name: 'Shows', CollectionType: 'tvshows', Locations: ['/srv/jellyfin/tv'] },
    { Name: 'Films', CollectionType: 'movies', Locations: ['/srv/jellyfin/movies'] },
  ]));
  const jellyfinPort = await freePort();
  const jellyfinLog = path.join(tmp, 'jellyfin.log');
  const jellyfin = start('jellyfin double', PYTHON, [MB_DOUBLE, '--kind', 'jellyfin12', '--port', String(jellyfinPort),
    '--token', JELLYFIN_TOKEN, '--libraries', librariesFile], {}, jellyfinLog);
  await waitFor(() => fs.readFileSync(jellyfinLog, 'utf8').includes('listening on'), 'the Jellyfin double');

  // ---- the daemon ----
  const port = await freePort();
  const origin = 'http://127.0.0.1:' + port;
  const state = path.join(tmp, 'state');
  fs.mkdirSync(state, { mode: 0o700 });
  const env = {
    PORT: String(port), BIND_ADDRESS: '127.0.0.1', STATE_DIR: state, DURABILITY: 'process',
    PLEX_URL: 'http://127.0.0.1:' + plexPort, PLEX_TOKEN, PLEX_TIMEOUT: '20s',
    JELLYFIN_URL: 'http://127.0.0.1:' + jellyfinPort, JELLYFIN_TOKEN,
    JELLYFIN_PATH_REPLACEMENTS: JSON.stringify({ '/tv': jellyfinOf('/tv'), '/movies': jellyfinOf('/movies') }),
    WEBHOOK_DELAY: '1h', WEBHOOK_MAX_DELAY: '2h', MINIMUM_AGE: '0',
    PATH_REPLACEMENTS: JSON.stringify({ '/tv': '/data/media/tv', '/movies': '/data/media/movies' }),
    LOCAL_PATH_REPLACEMENTS: JSON.stringify({ '/tv': path.join(media, 'tv'), '/movies': path.join(media, 'movies') }),
    RCLONE_PATH_REPLACEMENTS: JSON.stringify({ '/tv': '/mnt/cloud/tv', '/movies': '/mnt/cloud/movies' }),
    USE_RCLONE: 'true', RCLONE_RC_URL: rcUrl, RCLONE_MOUNT_ROOT: '/mnt/cloud', RCLONE_TIMEOUT: '20s',
    MANUAL_USER: USER, MANUAL_PASS: PASS, LOG_LEVEL: 'debug',
  };
  const envFile = path.join(tmp, 'daemon.env');
  fs.writeFileSync(envFile, Object.entries(env).map(([k, v]) => k + "='" + v + "'\n").join(''));
  const passEnv = {};
  for (const k of ['PATH', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'LD_LIBRARY_PATH']) {
    if (process.env[k] !== undefined) passEnv[k] = process.env[k];
  }
  const daemonLog = path.join(tmp, 'daemon.log');
  const daemon = start('daemon', BINARY, ['--env-file', envFile], { cwd: tmp, env: passEnv }, daemonLog);
  cleanups.push(async () => { if (failed) console.error('--- daemon log:\n' + tail(daemonLog)); });
  await waitFor(async () => {
    if (daemon.child.exitCode !== null) throw new Error('the daemon exited: ' + tail(daemonLog));
    const r = await fetch(origin + '/health');
    return r.status === 200;
  }, 'the daemon to answer /health');
  const auth = 'Basic ' + Buffer.from(USER + ':' + PASS).toString('base64');
  const apiGet = async (p) => (await fetch(origin + p, { headers: { Authorization: auth } })).json();

  // Pending entries: webhooks that wait for WEBHOOK_DELAY (1 h). The first one names a folder
  // <img src=x onerror=alert(1)>.
  const sonarr = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'sonarr-download.json'), 'utf8'));
  const webhook = async (folder, file, title) => {
    const p = structuredClone(sonarr);
    p.series.path = path.dirname(folder);
    p.series.title = title;
    p.episodeFile.relativePath = path.basename(folder) + '/' + file;
    p.episodeFile.path = folder + '/' + file;
    const r = await fetch(origin + '/webhook/sonarr', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(p),
    });
    return r.status === 202 ? (await r.json()).status : 'HTTP ' + r.status;
  };
  await waitFor(async () => (await webhook(hostileFolder, 'Episode S01E01.mkv', HOSTILE)) === 'queued',
    'the daemon to read the library list (webhook answered "queued")');
  check(await webhook(otherFolder, 'The Expanse (2015) - S02E05 - Home.mkv', 'The Expanse') === 'queued',
    'a second webhook is queued');
  // A manual scan through the API that rclone refuses: parked, waiting for a person.
  const parkedResp = await fetch(origin + '/api/scans', {
    method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ path: brokenFolder }),
  });
  check(parkedResp.status === 202, 'POST /api/scans queues a folder (' + parkedResp.status + ')');
  await waitFor(async () => (await apiGet('/api/queue')).entries.some((e) => e.state === 'parked'),
    'the folder rclone refuses to be parked');
  const brokenRefreshes = refreshes('Broken Show').length;

  // ---- 1. no credentials: 401 with a challenge ----
  const bare = await fetch(origin + '/');
  check(bare.status === 401 && /^Basic /i.test(bare.headers.get('www-authenticate') || ''),
    'GET / without credentials answers 401 with a Basic challenge');

  const flags = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps',
    '--disable-extensions', '--no-default-browser-check', '--metrics-recording-only'];
  const launch = async (extra) => {
    const profile = fs.mkdtempSync(path.join(tmp, 'profile-'));
    const ctx = await chromium.launchPersistentContext(profile, Object.assign({
      executablePath: CHROMIUM, headless: true, args: flags, viewport: { width: 1280, height: 800 },
      deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'UTC',
    }, extra));
    cleanups.push(() => ctx.close().catch(() => {}));
    return ctx;
  };

  {
    const ctx = await launch({});
    const page = ctx.pages()[0] || await ctx.newPage();
    // The browser answers the challenge with no credentials (Playwright refuses the login
    // prompt: the navigation ends in ERR_INVALID_AUTH_CREDENTIALS); the daemon's answer is seen
    // as the navigation's response.
    const seen = [];
    page.on('response', (r) => seen.push(r));
    const err = await page.goto(origin + '/').then(() => null, (e) => e);
    const first = seen.find((r) => r.url() === origin + '/');
    check(first && first.status() === 401 && /^Basic /i.test(first.headers()['www-authenticate'] || ''),
      'the browser without credentials gets 401 with a Basic challenge');
    check(!err || /ERR_INVALID_AUTH_CREDENTIALS/.test(err.message), 'and no page (' + (err ? err.message.split('\n')[0] : 'none') + ')');
    await ctx.close();
  }

  // ---- 2. with credentials ----
  const ctx = await launch({ httpCredentials: { username: USER, password: PASS } });
  const requests = [];
  const consoleErrors = [];
  const dialogs = [];
  ctx.on('request', (r) => requests.push(r.url()));
  const watch = (page) => {
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(m.type() + ': ' + m.text()); });
    page.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  };
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page);
  const resp = await page.goto(origin + '/');
  check(resp.status() === 200, 'the page loads with credentials');
  check(await page.title() === 'plex-servarr-sync', 'the page title');

  const hostileRow = page.locator('#q-body tr', { hasText: hostileFolder });
  await hostileRow.first().waitFor({ timeout: STEP_TIMEOUT });
  check(await hostileRow.locator('td.state .badge').first().textContent() === 'waiting', 'the pending entry shows as waiting');
  check((await hostileRow.locator('td.folder .path').first().textContent()) === hostileFolder,
    'the hostile folder name shows as text (arr path)');
  const plexDelivery = hostileRow.locator('td.servers li[data-target="plex"]');
  const jellyfinDelivery = hostileRow.locator('td.servers li[data-target="jellyfin"]');
  check((await plexDelivery.locator('.sub.path').textContent()) === '→ ' + plexOf(hostileFolder),
    'and as text (the path Plex is sent)');
  check((await jellyfinDelivery.locator('.sub.path').textContent()) === '→ ' + jellyfinOf(hostileFolder),
    'and as text (the path Jellyfin is sent)');
  check(/scans in \d/.test(await hostileRow.locator('.detail').textContent()) &&
    /^in \d/.test(await hostileRow.locator('td.due').textContent()), 'the pending entry shows when it is due');
  const plexChip = await plexDelivery.locator('.dchip').textContent();
  const jellyfinChip = await jellyfinDelivery.locator('.dchip').textContent();
  check(plexChip.includes('TV Shows (1)') && plexChip.includes('pending') &&
    await plexDelivery.getAttribute('data-state') === 'pending',
    'the pending entry shows its delivery to Plex: ' + plexChip);
  check(jellyfinChip.includes('Shows') && !jellyfinChip.includes('TV Shows') && jellyfinChip.includes('pending') &&
    await jellyfinDelivery.getAttribute('data-state') === 'pending',
    'and its delivery to Jellyfin: ' + jellyfinChip);
  check((await page.locator('img[src="x"]').count()) === 0, 'no <img src=x> element was made from the folder name');
  const targetPill = (name) => page.locator('.health li[data-target="' + name + '"]');
  await waitFor(async () => await targetPill('plex').getAttribute('class') === 'pill up', 'the plex target to show as answering');
  await waitFor(async () => await targetPill('jellyfin').getAttribute('class') === 'pill up', 'the jellyfin target to show as answering');
  await waitFor(async () => await page.locator('#st-rclone').getAttribute('class') === 'pill up', 'rclone to show as answering');
  check(await page.locator('.health li[data-target]').count() === 2 && await page.isHidden('#st-targets'),
    'a pill per target, no "no media server" pill');
  check((await targetPill('jellyfin').textContent()).includes('answers') &&
    (await targetPill('jellyfin').getAttribute('title')).includes('Jellyfin'), 'the jellyfin pill says it answers: ' +
    (await targetPill('jellyfin').textContent()));
  log('ok: both targets and rclone show as answering');

  // the parked entry: why, and a retry button that asks again
  const parkedRow = page.locator('#q-body tr[data-state="parked"]', { hasText: brokenFolder });
  await parkedRow.first().waitFor({ timeout: STEP_TIMEOUT });
  check((await parkedRow.locator('.detail').textContent()).includes('RCLONE_FS'), 'the parked entry says which variable to fix');
  const [retryResp] = await Promise.all([
    page.waitForResponse((r) => /\/api\/queue\/\d+\/retry$/.test(r.url())),
    parkedRow.locator('button.retry').click(),
  ]);
  check(retryResp.status() === 202, '"Retry" is accepted (202)');
  await waitFor(() => refreshes('Broken Show').length > brokenRefreshes, 'the retry to ask rclone again');
  await parkedRow.first().waitFor({ timeout: STEP_TIMEOUT });
  log('ok: the retried entry is parked again (rclone still refuses)');

  // ---- 3. preview, then scan ----
  await page.fill('#path', film);
  await page.click('#preview-btn');
  await page.locator('#preview').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await waitFor(async () => (await page.textContent('#pv-folder')) === film, 'the preview of the folder');
  const plexPreview = await page.textContent('#pv-deliveries li[data-target="plex"]');
  check(plexPreview.includes('Movies (2)') && plexPreview.includes("Plex's library list") && plexPreview.includes(plexOf(film)),
    'the preview names what Plex receives (section, where it came from, path): ' + plexPreview);
  const jellyfinPreview = await page.textContent('#pv-deliveries li[data-target="jellyfin"]');
  check(jellyfinPreview.includes('Films') && jellyfinPreview.includes("Jellyfin's library list") &&
    jellyfinPreview.includes(jellyfinOf(film)), 'and what Jellyfin receives: ' + jellyfinPreview);
  const hostText = await page.textContent('#pv-host');
  check(hostText.includes(hostOf(film)) && hostText.includes('exists'), 'the preview shows the host path and that it exists');
  const rcText = await page.textContent('#pv-rclone');
  check(rcText.includes('/mnt/cloud') && rcText.includes('movies/Amélie (2001)'),
    'the preview shows the rclone mount and VFS dir: ' + rcText);
  check(!(await page.isDisabled('#scan-btn')), '"Scan now" is enabled after the preview');

  const scansBefore = plexScans().length;
  await page.click('#scan-btn');
  const filmRow = page.locator('#q-body tr', { hasText: film });
  await filmRow.first().waitFor({ timeout: 5000 });
  const shownState = await filmRow.first().getAttribute('data-state');
  check(['queued', 'waiting', 'ready', 'checking', 'syncing'].includes(shownState),
    'the queue shows the folder at once (state ' + shownState + ')');
  await waitFor(async () => (await filmRow.first().getAttribute('data-state').catch(() => null)) === 'syncing',
    'the queue to show the folder syncing', 10000).catch(() => log('note: the syncing state passed between two refreshes'));
  check((await page.textContent('#scan-msg')).startsWith('Queued'), 'the page says it was queued');

  // ---- 4. Plex got the scan; the history shows it ----
  await waitFor(() => plexScans().slice(scansBefore).some((s) => s.section === '2' && s.path === plexOf(film)),
    'the Plex double to receive the scan of ' + plexOf(film));
  log('ok: the Plex double got the scan');
  check(refreshes('movies/Amélie (2001)').length >= 1, 'rclone was asked to refresh it first');
  const histRow = page.locator('#h-body tr', { hasText: film });
  await histRow.first().waitFor({ timeout: STEP_TIMEOUT });
  check(await histRow.first().getAttribute('data-status') === 'ok', 'the history shows the scan as ok');
  const results = await histRow.first().locator('td.servers li').evaluateAll((lis) => lis.map((li) =>
    li.dataset.target + '=' + li.dataset.result + ':' + li.textContent));
  check(results.length === 2 && results.some((r) => r.startsWith('plex=ok:') && r.includes('Movies (2)') && r.includes(plexOf(film))) &&
    results.some((r) => r.startsWith('jellyfin=ok:') && r.includes('Films') && r.includes(jellyfinOf(film))),
    'the history shows each delivery\'s result: ' + results.join(' | '));
  check((await histRow.first().locator('.attempts').textContent()) === '1 attempt', 'and the attempts');
  await waitFor(async () => (await filmRow.count()) === 0, 'the folder to leave the queue');
  check(await hostileRow.count() === 1, 'the pending entry is still waiting');
  const parkedHist = page.locator('#h-body tr[data-status="parked"]', { hasText: brokenFolder });
  check((await parkedHist.first().locator('.error').textContent()).includes('no VFS found'),
    'the history shows the error of a failed attempt');
  check((await parkedHist.first().locator('td.servers li[data-result="pending"]').count()) === 2 &&
    (await parkedHist.first().locator('td.servers').textContent()).includes('not sent'),
    'and that no target was sent the parked folder');

  // history search and filter
  await page.fill('#h-search', 'Amélie');
  await waitFor(async () => (await page.locator('#h-body tr').count()) === 1, 'the history search');
  await page.fill('#h-search', 'no such folder');
  await waitFor(async () => page.isVisible('#h-empty'), 'an empty search result');
  await page.fill('#h-search', '');
  await page.selectOption('#h-status', 'parked');
  await waitFor(async () => {
    const st = await page.locator('#h-body tr').evaluateAll((rows) => rows.map((r) => r.dataset.status));
    return st.length >= 1 && st.every((x) => x === 'parked');
  }, 'the "parked" filter');
  await page.selectOption('#h-status', 'failed');
  await waitFor(async () => page.isVisible('#h-empty'), 'the "failed" filter to show nothing');
  await page.selectOption('#h-status', '');
  await histRow.first().waitFor({ timeout: STEP_TIMEOUT });
  const stats = await apiGet('/api/stats');
  await waitFor(async () => (await page.textContent('#s-ok')) === String(stats.syncs.ok), 'the stats to show the sync');

  // ---- screenshots: desktop and phone, of ordinary folders: the queue's and the history's
  // answers are shown without the hostile folder (that one was checked above) ----
  // (the counts of the queue's states are lowered to match)
  const isHostile = (x) => String(x.path || x.arr_path || '').includes(HOSTILE);
  const hidden = (await apiGet('/api/queue')).entries.filter(isHostile).map((e) => e.state);
  const lower = (q) => {
    if (!q) return;
    if (typeof q.depth === 'number') q.depth -= hidden.length;
    for (const st of hidden) if (q.by_state && q.by_state[st]) q.by_state[st] -= 1;
  };
  const shown = (u) => ['/api/queue', '/api/history', '/api/stats'].includes(u.pathname);
  await ctx.route(shown, async (route) => {
    const r = await route.fetch();
    const body = await r.json();
    if (Array.isArray(body.entries)) { body.entries = body.entries.filter((x) => !isHostile(x)); lower(body); }
    if (Array.isArray(body.items)) body.items = body.items.filter((x) => !isHostile(x));
    if (body.syncs) lower(body.queue);
    await route.fulfill({ response: r, json: body });
  });
  await waitFor(async () => (await hostileRow.count()) === 0, 'the screenshot\'s queue without the hostile folder');
  await page.fill('#path', otherFolder);
  await page.click('#preview-btn');
  await waitFor(async () => (await page.textContent('#pv-folder')) === otherFolder, 'a preview for the screenshot');
  await page.mouse.move(0, 0);
  await page.screenshot({ path: path.join(SHOT_DIR, 'screenshot.png'), fullPage: true });
  log('saved screenshot.png');
  const phone = await ctx.newPage();
  watch(phone);
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(origin + '/');
  await phone.locator('#q-body tr', { hasText: otherFolder }).first().waitFor({ timeout: STEP_TIMEOUT });
  await phone.locator('#h-body tr', { hasText: film }).first().waitFor({ timeout: STEP_TIMEOUT });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, 'no horizontal scrolling on a phone-sized screen (overflow ' + overflow + ' px)');
  await phone.screenshot({ path: path.join(SHOT_DIR, 'screenshot-phone.png') });
  log('saved screenshot-phone.png');

  await ctx.unroute(shown);

  // ---- a target stops answering: its pill says so, the other one still answers ----
  jellyfin.child.kill('SIGTERM');
  await jellyfin.exited;
  await waitFor(async () => await targetPill('jellyfin').getAttribute('class') === 'pill down',
    'the jellyfin pill to show that it does not answer');
  check((await targetPill('jellyfin').locator('b').textContent()) === 'no answer' &&
    (await targetPill('jellyfin').getAttribute('title') || '').length > 0 &&
    await targetPill('plex').getAttribute('class') === 'pill up',
    'the stopped target shows "no answer" (why in its tooltip: ' + await targetPill('jellyfin').getAttribute('title') +
    '), the other still answers');

  // ---- 5. nothing from elsewhere, no console error, no dialog ----
  const foreign = requests.filter((u) => !u.startsWith(origin + '/'));
  check(foreign.length === 0, 'every request went to the daemon (' + requests.length + ' requests)' +
    (foreign.length ? ': ' + foreign.join(', ') : ''));
  check(!requests.some((u) => u === origin + '/x'), 'nothing loaded the hostile <img src=x>');
  check(dialogs.length === 0, 'no dialog opened' + (dialogs.length ? ': ' + dialogs.join(', ') : ''));
  check(consoleErrors.length === 0, 'the console shows no error' + (consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''));

  await ctx.close();
  // the daemon stops cleanly
  daemon.child.kill('SIGTERM');
  const [code, signal] = await daemon.exited;
  check(code === 0, 'the daemon exits 0 on SIGTERM (got ' + code + (signal ? ', ' + signal : '') + ')');
}

let overall;
try {
  await Promise.race([main(), new Promise((_, reject) => {
    overall = setTimeout(() => reject(new Error('the test took longer than 180 s')), 180000);
  })]);
  log('PASSED');
} catch (e) {
  failed = true;
  console.error('[e2e] FAILED:', e && e.stack ? e.stack : e);
} finally {
  for (const c of cleanups.reverse()) {
    try { await c(); } catch (e) { console.error('[e2e] cleanup:', e); }
  }
  clearTimeout(overall);
}
process.exit(failed ? 1 : 0);
