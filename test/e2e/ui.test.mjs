// End-to-end test of the web page in a real browser: Debian's Chromium, driven by playwright-core.
//
// It starts two media servers (the Plex double and the Jellyfin double, each a target of its
// own), a stand-in for rclone's remote control and the daemon on free ports in a temp dir, then:
//   1. without credentials, the page answers 401 (with a Basic challenge);
//   2. with them, the page loads, shows a pill per target and the queue: each entry leads with
//      what it is (the title from the *arr payload and the event's kind: import, upgrade,
//      rename), a folder named <img src=x onerror=alert(1)> shows as text, each delivery's state;
//   3. the Sources panel shows each app's webhook address (from the browser's own address), its
//      last event, and that a Sonarr Test arrived once one is sent;
//   4. a parked entry is retried, one by one and all at once; "Scan now" sends a waiting entry
//      at once; keyboard focus on a row's button survives the refreshes (also when the row is
//      rebuilt by a new event), and Enter on "Cancel" drops the entry;
//   5. it previews a folder, "Scan now" queues it, the history shows it ok with each delivery's
//      result and a relative time; search and filters;
//   6. every visible text meets WCAG AA contrast in the light and the dark theme, on the desktop
//      and the phone layouts, and every control is at least 24 px; screenshots;
//   7. the refresh can be paused: nothing is asked and nothing changes until it resumes;
//   8. first run: a daemon without any media server, with URL_BASE=/sync behind a reverse proxy,
//      shows the getting-started panel (which file, which variables, how to reload), says the
//      apps must send WEBHOOK_USER, and shows webhook addresses under the prefix, which work: a
//      Test sent there shows as arrived; every request of that page stayed under the prefix, and
//      the old /webhook/manual address leads to the page;
//   9. once the Jellyfin double stops, its pill says so; every request the page made went to
//      the daemon, and the console shows no error.
// Screenshots of the desktop (1280x800, the whole page) and phone (390x844, at the queue)
// layouts go to screenshot.png and screenshot-phone.png, next to this file unless
// PSS_SCREENSHOT_DIR names another directory (CTest sets it to the build tree, so test runs leave
// the committed images alone). They show ordinary folders: the hostile one is left out.
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
import { auditContrast, auditTargets } from './audit.mjs';

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

function listen(server) {
  server.listen(0, '127.0.0.1');
  cleanups.push(() => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return once(server, 'listening').then(() => 'http://127.0.0.1:' + server.address().port);
}

const readFixture = (name) => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));

// The daemon, started with `env` written to an env file in `dir`; resolves once /health answers.
async function startDaemon(dir, env, name) {
  fs.mkdirSync(env.STATE_DIR, { recursive: true, mode: 0o700 });
  const envFile = path.join(dir, name + '.env');
  fs.writeFileSync(envFile, Object.entries(env).map(([k, v]) => k + "='" + v + "'\n").join(''));
  const passEnv = {};
  for (const k of ['PATH', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'LD_LIBRARY_PATH']) {
    if (process.env[k] !== undefined) passEnv[k] = process.env[k];
  }
  const logFile = path.join(dir, name + '.log');
  const d = start(name, BINARY, ['--env-file', envFile], { cwd: dir, env: passEnv }, logFile);
  cleanups.push(async () => { if (failed) console.error('--- ' + name + ' log:\n' + tail(logFile)); });
  const origin = 'http://127.0.0.1:' + env.PORT;
  await waitFor(async () => {
    if (d.child.exitCode !== null) throw new Error(name + ' exited: ' + tail(logFile));
    return (await fetch(origin + (env.URL_BASE || '') + '/health')).status === 200;
  }, name + ' to answer /health');
  return Object.assign(d, { origin, envFile });
}

const AUTH = 'Basic ' + Buffer.from(USER + ':' + PASS).toString('base64');

// *arr webhooks as the apps send them (the fixtures, with this test's folders and titles).
function webhooks(origin) {
  const post = async (app, body) => {
    const r = await fetch(origin + '/webhook/' + app, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    return r.status === 202 || r.status === 200 ? ((await r.json()).status || 'ok') : 'HTTP ' + r.status;
  };
  return {
    episode(folder, series, season, episode, title) {
      const p = readFixture('sonarr-download.json');
      const file = series + ' - S' + String(season).padStart(2, '0') + 'E' + String(episode).padStart(2, '0') + ' - ' + title + '.mkv';
      p.series.path = path.dirname(folder);
      p.series.title = series;
      p.episodes = [Object.assign(p.episodes[0], { seasonNumber: season, episodeNumber: episode, title })];
      p.episodeFile.relativePath = path.basename(folder) + '/' + file;
      p.episodeFile.path = folder + '/' + file;
      return post('sonarr', p);
    },
    movie(folder, title, year, upgrade) {
      const p = readFixture(upgrade ? 'radarr-download-upgrade.json' : 'radarr-download.json');
      const file = title + ' (' + year + ') [Bluray-1080p].mkv';
      Object.assign(p.movie, { title, year, folderPath: folder });
      if (p.remoteMovie) Object.assign(p.remoteMovie, { title, year });
      Object.assign(p.movieFile, { relativePath: file, path: folder + '/' + file });
      for (const f of p.deletedFiles || []) f.path = folder + '/' + f.relativePath;
      return post('radarr', p);
    },
    album(folder, artist, album) {
      const p = readFixture('lidarr-download.json');
      p.artist.name = artist;
      p.artist.path = path.dirname(folder);
      p.album.title = album;
      p.trackFiles = p.trackFiles.map((f, i) => Object.assign(f, { path: folder + '/' + artist + ' - ' + album + ' - 0' + (i + 1) + '.flac' }));
      return post('lidarr', p);
    },
    test: () => post('sonarr', readFixture('sonarr-test.json')),
  };
}

// ---- the stand-ins: rclone's remote control, the Plex double, the Jellyfin double ----

// rclone's remote control: OK for every folder but "Broken Show", which gets rclone's "no VFS
// found" error (a configuration error: the entry is parked).
async function startRclone() {
  const calls = [];
  const rc = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      let input = {};
      try { input = JSON.parse(body || '{}'); } catch { input = {}; }
      calls.push({ path: req.url, dir: input.dir });
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
  const url = await listen(rc);
  return { url, refreshes: (needle) => calls.filter((c) => c.path === '/vfs/refresh' && String(c.dir).includes(needle)) };
}

// The Plex double: each refresh takes 2 s, so a scan is seen while it runs.
async function startPlex(tmp) {
  const sectionsFile = path.join(tmp, 'sections.json');
  fs.writeFileSync(sectionsFile, JSON.stringify([
    { key: '1', type: 'show', title: 'TV Shows', locations: ['/data/media/tv'] },
    { key: '2', type: 'movie', title: 'Movies', locations: ['/data/media/movies'] },
    { key: '3', type: 'artist', title: 'Music', locations: ['/data/media/music'] },
  ]));
  const port = await freePort();
  const logFile = path.join(tmp, 'plex.log');
  start('plex double', PYTHON, [PLEX_DOUBLE, '--port', String(port), '--token', PLEX_TOKEN,
    '--sections', sectionsFile, '--delay', '2', '--log'], {}, logFile);
  await waitFor(() => fs.readFileSync(logFile, 'utf8').includes('listening on'), 'the Plex double');
  const scans = () => fs.readFileSync(logFile, 'utf8').split('\n')
    .map((l) => /^\S+ refresh section=(\S+) path=(.*)$/.exec(l)).filter(Boolean)
    .map((m) => ({ section: m[1], path: m[2] }));
  return { url: 'http://127.0.0.1:' + port, scans };
}

// The Jellyfin double (Jellyfin 12: only the new authorization form), a second target that sees
// the media under /srv/jellyfin.
async function startJellyfin(tmp) {
  const librariesFile = path.join(tmp, 'libraries.json');
  fs.writeFileSync(librariesFile, JSON.stringify([
    { Name: 'Shows', CollectionType: 'tvshows', Locations: ['/srv/jellyfin/tv'] },
    { Name: 'Films', CollectionType: 'movies', Locations: ['/srv/jellyfin/movies'] },
    { Name: 'Music', CollectionType: 'music', Locations: ['/srv/jellyfin/music'] },
  ]));
  const port = await freePort();
  const logFile = path.join(tmp, 'jellyfin.log');
  const proc = start('jellyfin double', PYTHON, [MB_DOUBLE, '--kind', 'jellyfin12', '--port', String(port),
    '--token', JELLYFIN_TOKEN, '--libraries', librariesFile], {}, logFile);
  await waitFor(() => fs.readFileSync(logFile, 'utf8').includes('listening on'), 'the Jellyfin double');
  return Object.assign(proc, { url: 'http://127.0.0.1:' + port });
}

// A reverse proxy that passes what starts with `prefix` to `origin`, the path unchanged (Caddy's
// `handle /sync*`, nginx's `location /sync { proxy_pass http://daemon; }`), and answers 404 to
// the rest.
async function startProxy(origin, prefix) {
  const seen = [];
  const proxy = http.createServer((req, res) => {
    seen.push(req.url);
    if (!req.url.startsWith(prefix)) { res.writeHead(404); res.end('not under ' + prefix); return; }
    const up = http.request(origin + req.url, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  const url = await listen(proxy);
  return { url, seen };
}

const flags = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps',
  '--disable-extensions', '--no-default-browser-check', '--metrics-recording-only'];

async function launch(tmp, extra) {
  const profile = fs.mkdtempSync(path.join(tmp, 'profile-'));
  const ctx = await chromium.launchPersistentContext(profile, Object.assign({
    executablePath: CHROMIUM, headless: true, args: flags, viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'UTC',
  }, extra));
  cleanups.push(() => ctx.close().catch(() => {}));
  return ctx;
}

// Console errors, page errors and dialogs of a page, gathered for the end.
function watch(page, out) {
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.type() + ': ' + m.text()); });
  page.on('pageerror', (e) => out.console.push('pageerror: ' + e.message));
  page.on('dialog', (d) => { out.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
}

// ---- 1. no credentials: 401 with a challenge ----
async function stepNoCredentials(tmp, origin) {
  const bare = await fetch(origin + '/');
  check(bare.status === 401 && /^Basic /i.test(bare.headers.get('www-authenticate') || ''),
    'GET / without credentials answers 401 with a Basic challenge');
  const ctx = await launch(tmp, {});
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

// ---- 2. the queue: what each entry is, the hostile folder as text, each delivery ----
async function stepQueue(page, t) {
  const hostileRow = page.locator('#q-body tr', { hasText: t.hostileFolder });
  await hostileRow.first().waitFor({ timeout: STEP_TIMEOUT });
  check(await hostileRow.locator('td.state .badge').first().textContent() === 'waiting', 'the pending entry shows as waiting');
  check((await hostileRow.locator('td.folder .path').first().textContent()) === t.hostileFolder,
    'the hostile folder name shows as text (arr path)');
  check((await hostileRow.locator('td.folder .title').textContent()).startsWith(HOSTILE + ' S01E01'),
    'and the hostile series title, from the payload, as text');
  const plexDelivery = hostileRow.locator('td.servers li[data-target="plex"]');
  const jellyfinDelivery = hostileRow.locator('td.servers li[data-target="jellyfin"]');
  check((await plexDelivery.locator('.sub.path').textContent()) === '→ ' + t.plexOf(t.hostileFolder),
    'and as text (the path Plex is sent)');
  check((await jellyfinDelivery.locator('.sub.path').textContent()) === '→ ' + t.jellyfinOf(t.hostileFolder),
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

  // each entry leads with what it is and the event's kind
  const what = async (folder) => {
    const row = page.locator('#q-body tr', { hasText: folder }).first();
    return [await row.locator('td.folder .title').textContent(), await row.locator('td.folder .badge.ev').textContent()];
  };
  for (const [folder, title, kind] of t.titled) {
    await page.locator('#q-body tr', { hasText: folder }).first().waitFor({ timeout: STEP_TIMEOUT });
    const [shown, event] = await what(folder);
    check(shown === title && event === kind, 'the entry of ' + folder + ' leads with "' + shown + '" (' + event + ')');
  }
}

async function stepTargets(page) {
  const targetPill = (name) => page.locator('.health li[data-target="' + name + '"]');
  await waitFor(async () => await targetPill('plex').getAttribute('class') === 'pill up', 'the plex target to show as answering');
  await waitFor(async () => await targetPill('jellyfin').getAttribute('class') === 'pill up', 'the jellyfin target to show as answering');
  await waitFor(async () => await page.locator('#st-rclone').getAttribute('class') === 'pill up', 'rclone to show as answering');
  check(await page.locator('.health li[data-target]').count() === 2 && await page.isHidden('#st-targets'),
    'a pill per target, no "no media server" pill');
  check((await targetPill('jellyfin').textContent()).includes('answers') &&
    (await targetPill('jellyfin').getAttribute('title')).includes('Jellyfin'), 'the jellyfin pill says it answers: ' +
    (await targetPill('jellyfin').textContent()));
  check(await page.isHidden('#setup'), 'no getting-started panel: media servers are configured');
}

// ---- 3. sources: the webhook addresses, the last event, the Test ----
async function stepSources(page, origin, hooks, t) {
  const row = (app) => page.locator('#src-body tr[data-app="' + app + '"]');
  for (const app of ['sonarr', 'radarr', 'lidarr', 'readarr']) {
    check((await row(app).locator('.url').textContent()) === origin + '/webhook/' + app,
      'Sources shows ' + app + '\'s webhook address, from the address the browser used');
  }
  await waitFor(async () => (await row('sonarr').locator('td.last').textContent()).includes('The Expanse'),
    'Sonarr\'s last event in Sources');
  const last = await row('sonarr').locator('td.last').textContent();
  check(last.includes('Download') && /ago|just now/.test(last), 'with its type and when: ' + last);
  check((await row('radarr').locator('td.last').textContent()).includes('Inception (2010)'), 'and Radarr\'s');
  check(await row('sonarr').getAttribute('data-tested') === 'no' &&
    (await row('sonarr').locator('td.test').textContent()).includes('no Test yet'), 'no Test has arrived from Sonarr yet');
  check(await hooks.test() !== 'HTTP 400', 'Sonarr\'s Test webhook is answered');
  await waitFor(async () => await row('sonarr').getAttribute('data-tested') === 'yes', 'Sources to show Sonarr\'s Test');
  const test = await row('sonarr').locator('td.test').textContent();
  check(test.includes('arrived') && /ago|just now/.test(test), 'Sonarr\'s Test shows as arrived: ' + test);
  check(await row('radarr').getAttribute('data-tested') === 'no', 'and Radarr\'s not');
  check(await hooks.episode(t.laterFolder, 'Slow Horses', 3, 1, 'Strange Games') === 'queued', 'another episode from Sonarr');
  await waitFor(async () => (await row('sonarr').locator('td.last').textContent()).includes('Slow Horses S03E01'),
    'Sources to show it as Sonarr\'s last event');
  check(await row('sonarr').getAttribute('data-tested') === 'yes', 'while the Test still shows as arrived');
  // a request the daemon refuses shows too, with the reason
  const refused = await fetch(origin + '/webhook/readarr', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'hello' });
  check(refused.status === 415, 'a webhook that is not JSON is refused (' + refused.status + ')');
  await waitFor(async () => await row('readarr').getAttribute('data-refused') === 'yes', 'Sources to show Readarr\'s refusal');
  const why = await row('readarr').locator('.refused').textContent();
  check(why.includes('refused 415') && why.length > 'refused 415'.length + 10, 'with its status and reason: ' + why);
}

// ---- 4. actions: retry, retry all parked, scan now, focus across refreshes, cancel ----
async function stepParked(page, t, rc) {
  const parkedRow = page.locator('#q-body tr[data-state="parked"]', { hasText: t.brokenFolder });
  await parkedRow.first().waitFor({ timeout: STEP_TIMEOUT });
  check((await parkedRow.locator('.detail').textContent()).includes('RCLONE_FS'), 'the parked entry says which variable to fix');
  let asked = rc.refreshes('Broken Show').length;
  const [retryResp] = await Promise.all([
    page.waitForResponse((r) => /\/api\/queue\/\d+\/retry$/.test(r.url())),
    parkedRow.locator('button.retry').click(),
  ]);
  check(retryResp.status() === 202, '"Retry" is accepted (202)');
  await waitFor(() => rc.refreshes('Broken Show').length > asked, 'the retry to ask rclone again');
  await parkedRow.first().waitFor({ timeout: STEP_TIMEOUT });
  log('ok: the retried entry is parked again (rclone still refuses)');

  asked = rc.refreshes('Broken Show').length;
  const all = page.locator('#q-retry-parked');
  await all.waitFor({ timeout: STEP_TIMEOUT });
  const [allResp] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/retry-parked')),
    all.click(),
  ]);
  check(allResp.status() === 200 && (await allResp.json()).retried === 1, '"Retry all parked" retries the one parked entry');
  await waitFor(() => rc.refreshes('Broken Show').length > asked, '"Retry all parked" to ask rclone again');
  await parkedRow.first().waitFor({ timeout: STEP_TIMEOUT });
  check((await page.textContent('#q-msg')).includes('1 parked folder'), 'the page says how many were retried');
}

async function stepScanNow(page, t, plex) {
  const row = page.locator('#q-body tr', { hasText: t.otherFolder }).first();
  check(await row.getAttribute('data-state') === 'waiting', 'The Expanse waits for its debounce (an hour)');
  const before = plex.scans().length;
  const [resp] = await Promise.all([
    page.waitForResponse((r) => /\/api\/queue\/\d+\/now$/.test(r.url())),
    row.locator('button.now').click(),
  ]);
  check(resp.status() === 200, '"Scan now" is accepted (' + resp.status() + ')');
  await waitFor(() => plex.scans().slice(before).some((s) => s.path === t.plexOf(t.otherFolder)),
    'the Plex double to receive the scan of ' + t.plexOf(t.otherFolder) + ' without waiting for the debounce');
  const hist = page.locator('#h-body tr[data-status="ok"]', { hasText: t.otherFolder }).first();
  await hist.waitFor({ timeout: STEP_TIMEOUT });
  check((await hist.locator('.title').textContent()).startsWith('The Expanse S02E05') &&
    (await hist.locator('.badge.ev').textContent()) === 'import', 'the history row leads with the title and the event');
  check(/ago|just now/.test(await hist.locator('td.when time').textContent()) &&
    (await hist.locator('td.when time').getAttribute('datetime')).endsWith('Z'), 'and says when, relative to now');
}

// Keyboard focus on a row's button stays there across refreshes: when the row did not change,
// and when a new event for its folder rebuilt it. Enter then cancels the entry.
async function stepFocusAndCancel(page, t, hooks, apiGet) {
  const row = page.locator('#q-body tr', { hasText: t.cancelFolder }).first();
  await row.waitFor({ timeout: STEP_TIMEOUT });
  const id = await row.getAttribute('data-id');
  const focused = () => page.evaluate(() => {
    const a = document.activeElement;
    return a && a.dataset.focus ? a.dataset.focus + '@' + a.closest('tr').dataset.id : null;
  });
  await row.locator('button.cancel').focus();
  await page.evaluate(() => { document.activeElement.pssMarked = true; });
  const refreshes = async (n) => {
    for (let i = 0; i < n; i++) await page.waitForResponse((r) => r.url().endsWith('/api/queue'));
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
  };
  await refreshes(2);
  check(await focused() === 'cancel@' + id && await page.evaluate(() => document.activeElement.pssMarked === true),
    'the focused Cancel button is still focused after two refreshes');
  check(!(await hooks.movie(t.cancelFolder, 'Dune', 2021, false)).startsWith('HTTP'), 'a second event for the focused entry');
  await waitFor(async () => (await row.locator('.from').textContent()).includes('2 events'), 'the entry to show 2 events');
  check(await focused() === 'cancel@' + id && await page.evaluate(() => document.activeElement.pssMarked !== true),
    'its row was rebuilt, and the focus moved to the new row\'s Cancel button');
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/queue/' + id + '/cancel')),
    page.keyboard.press('Enter'),
  ]);
  check(resp.status() === 200 && (await resp.json()).cancelled === Number(id), 'Enter on Cancel cancels the entry');
  await waitFor(async () => (await page.locator('#q-body tr[data-id="' + id + '"]').count()) === 0, 'the entry to leave the queue');
  check(!(await apiGet('/api/queue')).entries.some((e) => String(e.id) === id), 'the daemon no longer has it');
  check(await page.evaluate(() => document.activeElement !== document.body && document.activeElement !== null),
    'the focus stays in the queue (' + await page.evaluate(() => document.activeElement.outerHTML.slice(0, 60)) + ')');
  check((await page.textContent('#q-msg')).startsWith('Cancelled: Dune (2021)'), 'the page says what was cancelled');
}

// ---- 5. preview, scan, the history ----
async function stepPreviewAndScan(page, t, plex, rc) {
  const film = t.film;
  await page.fill('#path', film);
  await page.click('#preview-btn');
  await page.locator('#preview').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  await waitFor(async () => (await page.textContent('#pv-folder')) === film, 'the preview of the folder');
  const plexPreview = await page.textContent('#pv-deliveries li[data-target="plex"]');
  check(plexPreview.includes('Movies (2)') && plexPreview.includes("Plex's library list") && plexPreview.includes(t.plexOf(film)),
    'the preview names what Plex receives (section, where it came from, path): ' + plexPreview);
  const jellyfinPreview = await page.textContent('#pv-deliveries li[data-target="jellyfin"]');
  check(jellyfinPreview.includes('Films') && jellyfinPreview.includes("Jellyfin's library list") &&
    jellyfinPreview.includes(t.jellyfinOf(film)), 'and what Jellyfin receives: ' + jellyfinPreview);
  const hostText = await page.textContent('#pv-host');
  check(hostText.includes(t.hostOf(film)) && hostText.includes('exists'), 'the preview shows the host path and that it exists');
  const rcText = await page.textContent('#pv-rclone');
  check(rcText.includes('/mnt/cloud') && rcText.includes('movies/Amélie (2001)'),
    'the preview shows the rclone mount and VFS dir: ' + rcText);
  check(!(await page.isDisabled('#scan-btn')), '"Scan now" is enabled after the preview');

  const scansBefore = plex.scans().length;
  await page.click('#scan-btn');
  const filmRow = page.locator('#q-body tr', { hasText: film });
  await filmRow.first().waitFor({ timeout: 5000 });
  const shownState = await filmRow.first().getAttribute('data-state');
  check(['queued', 'waiting', 'ready', 'checking', 'syncing'].includes(shownState),
    'the queue shows the folder at once (state ' + shownState + ')');
  await waitFor(async () => (await filmRow.first().getAttribute('data-state').catch(() => null)) === 'syncing',
    'the queue to show the folder syncing', 10000).catch(() => log('note: the syncing state passed between two refreshes'));
  check((await page.textContent('#scan-msg')).startsWith('Queued'), 'the page says it was queued');

  await waitFor(() => plex.scans().slice(scansBefore).some((s) => s.section === '2' && s.path === t.plexOf(film)),
    'the Plex double to receive the scan of ' + t.plexOf(film));
  log('ok: the Plex double got the scan');
  check(rc.refreshes('movies/Amélie (2001)').length >= 1, 'rclone was asked to refresh it first');
  const histRow = page.locator('#h-body tr', { hasText: film });
  await histRow.first().waitFor({ timeout: STEP_TIMEOUT });
  check(await histRow.first().getAttribute('data-status') === 'ok', 'the history shows the scan as ok');
  const results = await histRow.first().locator('td.servers li').evaluateAll((lis) => lis.map((li) =>
    li.dataset.target + '=' + li.dataset.result + ':' + li.textContent));
  check(results.length === 2 && results.some((r) => r.startsWith('plex=ok:') && r.includes('Movies (2)') && r.includes(t.plexOf(film))) &&
    results.some((r) => r.startsWith('jellyfin=ok:') && r.includes('Films') && r.includes(t.jellyfinOf(film))),
    'the history shows each delivery\'s result: ' + results.join(' | '));
  check((await histRow.first().locator('.attempts').textContent()) === '1 attempt', 'and the attempts');
  check((await histRow.first().locator('.badge.ev').textContent()) === 'manual', 'and that a person asked for it');
  await waitFor(async () => (await filmRow.count()) === 0, 'the folder to leave the queue');
  const parkedHist = page.locator('#h-body tr[data-status="parked"]', { hasText: t.brokenFolder });
  check((await parkedHist.first().locator('.error').textContent()).includes('no VFS found'),
    'the history shows the error of a failed attempt');
  check((await parkedHist.first().locator('td.servers li[data-result="pending"]').count()) === 2 &&
    (await parkedHist.first().locator('td.servers').textContent()).includes('not sent'),
    'and that no target was sent the parked folder');
}

async function stepHistoryFilters(page, t) {
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
  await page.locator('#h-body tr', { hasText: t.film }).first().waitFor({ timeout: STEP_TIMEOUT });
}

// ---- 6. contrast and target sizes, both themes; the screenshots ----
async function audit(page, what) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    const c = await page.evaluate(auditContrast);
    check(c.checked > 50 && c.failures.length === 0, what + ', ' + scheme + ' theme: every visible text meets WCAG AA contrast (' +
      c.checked + ' checked)' + (c.failures.length ? ':\n  ' + c.failures.join('\n  ') : ''));
    const s = await page.evaluate(auditTargets);
    check(s.checked > 5 && s.failures.length === 0, what + ', ' + scheme + ' theme: every control is at least 24x24 px (' +
      s.checked + ' checked)' + (s.failures.length ? ': ' + s.failures.join(', ') : ''));
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

// The queue's, the history's and the stats' answers are shown without the hostile folder
// (checked above) while the screenshots are taken, the counts of the queue's states lowered to
// match, and the preview's host path under /srv/media rather than the temp dir.
async function forScreenshots(ctx, apiGet, media) {
  const isHostile = (x) => String(x.path || x.arr_path || '').includes(HOSTILE);
  const hidden = (await apiGet('/api/queue')).entries.filter(isHostile).map((e) => e.state);
  const lower = (q) => {
    if (!q) return;
    if (typeof q.depth === 'number') q.depth -= hidden.length;
    for (const st of hidden) if (q.by_state && q.by_state[st]) q.by_state[st] -= 1;
  };
  const shown = (u) => ['/api/queue', '/api/history', '/api/stats', '/api/resolve'].includes(u.pathname);
  await ctx.route(shown, async (route) => {
    const r = await route.fetch();
    const body = await r.json();
    if (body.host && typeof body.host.path === 'string') body.host.path = body.host.path.replace(media, '/srv/media');
    if (Array.isArray(body.entries)) { body.entries = body.entries.filter((x) => !isHostile(x)); lower(body); }
    if (Array.isArray(body.items)) body.items = body.items.filter((x) => !isHostile(x));
    if (body.syncs) lower(body.queue);
    await route.fulfill({ response: r, json: body });
  });
  return () => ctx.unroute(shown);
}

async function stepLookAndScreenshots(ctx, page, t, apiGet, out) {
  const restore = await forScreenshots(ctx, apiGet, t.media);
  await waitFor(async () => (await page.locator('#q-body tr', { hasText: t.hostileFolder }).count()) === 0,
    'the screenshot\'s queue without the hostile folder');
  await page.fill('#path', t.previewFolder);
  await page.click('#preview-btn');
  await waitFor(async () => (await page.textContent('#pv-folder')) === t.previewFolder, 'a preview for the screenshot');
  await page.mouse.move(0, 0);
  await audit(page, 'the desktop layout');
  await page.screenshot({ path: path.join(SHOT_DIR, 'screenshot.png'), fullPage: true });
  log('saved screenshot.png');
  const phone = await ctx.newPage();
  watch(phone, out);
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(t.origin + '/');
  await phone.locator('#q-body tr', { hasText: t.queuedFolder }).first().waitFor({ timeout: STEP_TIMEOUT });
  await phone.locator('#h-body tr', { hasText: t.film }).first().waitFor({ timeout: STEP_TIMEOUT });
  await phone.locator('#src-body tr[data-tested="yes"]').first().waitFor({ timeout: STEP_TIMEOUT });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, 'no horizontal scrolling on a phone-sized screen (overflow ' + overflow + ' px)');
  await audit(phone, 'the phone layout');
  await phone.locator('#queue').evaluate((n) => n.scrollIntoView());
  await phone.screenshot({ path: path.join(SHOT_DIR, 'screenshot-phone.png') });
  log('saved screenshot-phone.png');
  await phone.close();
  await restore();
}

// ---- 7. the refresh paused: nothing asked, nothing changed, until it resumes ----
// The page's clock is Playwright's: time is run forward at once, without waiting for it.
async function stepPause(tmp, origin, out) {
  const ctx = await launch(tmp, { httpCredentials: { username: USER, password: PASS } });
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page, out);
  await page.clock.install();
  const asked = [];
  page.on('request', (r) => { if (/\/api\/(queue|stats|history|sources)(\?|$)/.test(r.url())) asked.push(r.url()); });
  await page.goto(origin + '/');
  const due = page.locator('#q-body tr[data-state="waiting"] td.due').first();
  await due.waitFor({ timeout: STEP_TIMEOUT });
  await page.clock.runFor(5000);
  await waitFor(async () => asked.filter((u) => u.endsWith('/api/queue')).length >= 2, 'the refresh to run on the page\'s clock');
  await page.click('#pause');
  check(await page.getAttribute('#pause', 'aria-pressed') === 'true' && (await page.textContent('#st-live')).includes('paused'),
    'the pause button is pressed and the live pill says "paused"');
  await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));
  const n = asked.length;
  const countdown = await due.textContent();
  await page.clock.runFor(60000);
  await page.evaluate(() => fetch('health').then((r) => r.text()));
  check(asked.length === n, 'a minute later (on the page\'s clock) nothing was asked (' + (asked.length - n) + ' requests)');
  check(await due.textContent() === countdown, 'and nothing changed: the countdown still says "' + countdown + '"');
  await Promise.all([page.waitForRequest((r) => r.url().endsWith('/api/queue')), page.click('#pause')]);
  check(await page.getAttribute('#pause', 'aria-pressed') === 'false', 'resuming asks the daemon again at once');
  await ctx.close();
}

// ---- 8. first run, behind a reverse proxy under /sync/ (URL_BASE) ----
async function stepFirstRun(tmp, out) {
  const port = await freePort();
  const proxy = await startProxy('http://127.0.0.1:' + port, '/sync');
  const base = proxy.url + '/sync/';
  const env = {
    PORT: String(port), BIND_ADDRESS: '127.0.0.1', STATE_DIR: path.join(tmp, 'state-first'), DURABILITY: 'process',
    URL_BASE: '/sync', PUBLIC_URL: proxy.url + '/sync', MANUAL_USER: USER, MANUAL_PASS: PASS, LOG_LEVEL: 'debug',
    WEBHOOK_USER: 'arr', WEBHOOK_PASS: 'e2e-webhook-pass-4Rt',
  };
  const daemon = await startDaemon(tmp, env, 'first-run');
  const ctx = await launch(tmp, { httpCredentials: { username: USER, password: PASS } });
  const requests = [];
  ctx.on('request', (r) => requests.push(r.url()));
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page, out);
  const resp = await page.goto(proxy.url + '/sync');
  check(resp.status() === 200 && page.url() === base, 'the page loads behind the proxy, at ' + page.url());
  await page.locator('#setup').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  const setup = await page.textContent('#setup');
  check(setup.includes('no media server is configured') && setup.includes('PLEX_URL') && setup.includes('PLEX_TOKEN') &&
    setup.includes('JELLYFIN_URL') && setup.includes('MEDIA_SERVERS'), 'the getting-started panel names the variables to set');
  await waitFor(async () => (await page.textContent('#setup-where')).includes(daemon.envFile), 'the panel to name the file');
  const setupApi = (await (await fetch(base + 'api/stats', { headers: { Authorization: AUTH } })).json()).setup;
  check(setupApi.targets === 0 && setupApi.url_base === '/sync' && (await page.textContent('#setup-reload')) === setupApi.reload,
    'and how to reload this daemon, where it runs: ' + setupApi.reload);
  const sonarr = page.locator('#src-body tr[data-app="sonarr"]');
  const address = await sonarr.locator('.url').textContent();
  check(address === base + 'webhook/sonarr', 'Sonarr\'s webhook address is under the proxy\'s prefix: ' + address);
  check((await page.textContent('#src-note')).includes('WEBHOOK_USER and WEBHOOK_PASS'),
    'Sources says the apps must send WEBHOOK_USER and WEBHOOK_PASS');
  // The address shown is the one to paste: a Test sent there arrives.
  const arrAuth = 'Basic ' + Buffer.from(env.WEBHOOK_USER + ':' + env.WEBHOOK_PASS).toString('base64');
  const test = await fetch(address, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: arrAuth },
    body: JSON.stringify(readFixture('sonarr-test.json')) });
  check(test.status < 300, 'a Test sent to the address shown is answered (' + test.status + ')');
  await waitFor(async () => await sonarr.getAttribute('data-tested') === 'yes', 'Sources to show the Test');
  await audit(page, 'the first-run page');
  await page.goto(base + 'webhook/manual');
  await page.locator('#setup').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  check(page.url() === base, 'the Python script\'s address, ' + base + 'webhook/manual, leads to the page');
  const outside = requests.filter((u) => !u.startsWith(base) && u !== proxy.url + '/sync');
  check(outside.length === 0, 'every request of the page stayed under ' + base + ' (' + requests.length + ' requests)' +
    (outside.length ? ': ' + outside.join(', ') : ''));
  check(proxy.seen.length > 0 && proxy.seen.every((u) => u === '/sync' || u.startsWith('/sync/')),
    'the proxy saw nothing outside its prefix');
  await ctx.close();
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
  const t = {
    media,
    hostOf: (p) => path.join(media, p.replace(/^\//, '')),
    plexOf: (p) => '/data/media' + p,
    jellyfinOf: (p) => '/srv/jellyfin' + p,
    hostileFolder: '/tv/' + HOSTILE + '/Season 01',
    otherFolder: '/tv/The Expanse/Season 02',
    queuedFolder: '/tv/Severance/Season 01',
    upgradeFolder: '/movies/Inception (2010)',
    albumFolder: '/music/Daft Punk/Discovery (2001)',
    cancelFolder: '/movies/Dune (2021)',
    brokenFolder: '/tv/Broken Show (2019)/Season 01',
    film: '/movies/Amélie (2001)',
    previewFolder: '/tv/The Expanse/Season 03',
    laterFolder: '/tv/Slow Horses/Season 03',
  };
  for (const f of [t.hostileFolder, t.otherFolder, t.queuedFolder, t.upgradeFolder, t.albumFolder, t.cancelFolder,
    t.brokenFolder, t.film, t.previewFolder, t.laterFolder]) touch(t.hostOf(f + '/file.mkv'));

  const rc = await startRclone();
  const plex = await startPlex(tmp);
  const jellyfin = await startJellyfin(tmp);
  const mapTo = (root) => JSON.stringify({ '/tv': root + '/tv', '/movies': root + '/movies', '/music': root + '/music' });
  const port = await freePort();
  const daemon = await startDaemon(tmp, {
    PORT: String(port), BIND_ADDRESS: '127.0.0.1', STATE_DIR: path.join(tmp, 'state'), DURABILITY: 'process',
    PLEX_URL: plex.url, PLEX_TOKEN, PLEX_TIMEOUT: '20s',
    JELLYFIN_URL: jellyfin.url, JELLYFIN_TOKEN, JELLYFIN_PATH_REPLACEMENTS: mapTo('/srv/jellyfin'),
    WEBHOOK_DELAY: '1h', WEBHOOK_MAX_DELAY: '2h', MINIMUM_AGE: '0',
    PATH_REPLACEMENTS: mapTo('/data/media'), LOCAL_PATH_REPLACEMENTS: mapTo(media),
    RCLONE_PATH_REPLACEMENTS: mapTo('/mnt/cloud'),
    USE_RCLONE: 'true', RCLONE_RC_URL: rc.url, RCLONE_MOUNT_ROOT: '/mnt/cloud', RCLONE_TIMEOUT: '20s',
    MANUAL_USER: USER, MANUAL_PASS: PASS, LOG_LEVEL: 'debug',
  }, 'daemon');
  const origin = daemon.origin;
  t.origin = origin;
  const apiGet = async (p) => (await fetch(origin + p, { headers: { Authorization: AUTH } })).json();
  const hooks = webhooks(origin);

  // Pending entries: webhooks that wait for WEBHOOK_DELAY (1 h). The first one names a folder
  // <img src=x onerror=alert(1)>.
  await waitFor(async () => (await hooks.episode(t.hostileFolder, HOSTILE, 1, 1, 'Pilot')) === 'queued',
    'the daemon to read the library list (webhook answered "queued")');
  t.titled = [
    [t.queuedFolder, 'Severance S01E03 · In Perpetuity', 'import', () => hooks.episode(t.queuedFolder, 'Severance', 1, 3, 'In Perpetuity')],
    [t.cancelFolder, 'Dune (2021)', 'import', () => hooks.movie(t.cancelFolder, 'Dune', 2021, false)],
    [t.albumFolder, 'Daft Punk – Discovery', 'import', () => hooks.album(t.albumFolder, 'Daft Punk', 'Discovery')],
    [t.upgradeFolder, 'Inception (2010)', 'upgrade', () => hooks.movie(t.upgradeFolder, 'Inception', 2010, true)],
    [t.otherFolder, 'The Expanse S02E05 · Doors & Corners', 'import', () => hooks.episode(t.otherFolder, 'The Expanse', 2, 5, 'Doors & Corners')],
  ];
  for (const [folder, , , send] of t.titled) check(await send() === 'queued', 'a webhook for ' + folder + ' is queued');
  // A manual scan through the API that rclone refuses: parked, waiting for a person.
  const parkedResp = await fetch(origin + '/api/scans', {
    method: 'POST', headers: { Authorization: AUTH, 'Content-Type': 'application/json' },
    body: JSON.stringify({ path: t.brokenFolder }),
  });
  check(parkedResp.status === 202, 'POST /api/scans queues a folder (' + parkedResp.status + ')');
  await waitFor(async () => (await apiGet('/api/queue')).entries.some((e) => e.state === 'parked'),
    'the folder rclone refuses to be parked');

  await stepNoCredentials(tmp, origin);

  const ctx = await launch(tmp, { httpCredentials: { username: USER, password: PASS } });
  const requests = [];
  const out = { console: [], dialogs: [] };
  ctx.on('request', (r) => requests.push(r.url()));
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page, out);
  const resp = await page.goto(origin + '/');
  check(resp.status() === 200, 'the page loads with credentials');
  check(await page.title() === 'plex-servarr-sync', 'the page title');
  await stepQueue(page, t);
  await stepTargets(page);
  await stepSources(page, origin, hooks, t);
  await stepParked(page, t, rc);
  await stepScanNow(page, t, plex);
  await stepFocusAndCancel(page, t, hooks, apiGet);
  await stepPreviewAndScan(page, t, plex, rc);
  await stepHistoryFilters(page, t);
  const stats = await apiGet('/api/stats');
  await waitFor(async () => (await page.textContent('#s-ok')) === String(stats.syncs.ok), 'the stats to show the syncs');
  await stepLookAndScreenshots(ctx, page, t, apiGet, out);
  await stepPause(tmp, origin, out);
  await stepFirstRun(tmp, out);

  // ---- 9. a target stops answering: its pill says so, the other one still answers ----
  jellyfin.child.kill('SIGTERM');
  await jellyfin.exited;
  const targetPill = (name) => page.locator('.health li[data-target="' + name + '"]');
  await waitFor(async () => await targetPill('jellyfin').getAttribute('class') === 'pill down',
    'the jellyfin pill to show that it does not answer');
  check((await targetPill('jellyfin').locator('b').textContent()) === 'no answer' &&
    (await targetPill('jellyfin').getAttribute('title') || '').length > 0 &&
    await targetPill('plex').getAttribute('class') === 'pill up',
    'the stopped target shows "no answer" (why in its tooltip: ' + await targetPill('jellyfin').getAttribute('title') +
    '), the other still answers');

  // nothing from elsewhere, no console error, no dialog
  const foreign = requests.filter((u) => !u.startsWith(origin + '/'));
  check(foreign.length === 0, 'every request went to the daemon (' + requests.length + ' requests)' +
    (foreign.length ? ': ' + foreign.join(', ') : ''));
  check(!requests.some((u) => u === origin + '/x'), 'nothing loaded the hostile <img src=x>');
  check(out.dialogs.length === 0, 'no dialog opened' + (out.dialogs.length ? ': ' + out.dialogs.join(', ') : ''));
  check(out.console.length === 0, 'the console shows no error' + (out.console.length ? ': ' + out.console.join(' | ') : ''));

  await ctx.close();
  // the daemon stops cleanly
  daemon.child.kill('SIGTERM');
  const [code, signal] = await daemon.exited;
  check(code === 0, 'the daemon exits 0 on SIGTERM (got ' + code + (signal ? ', ' + signal : '') + ')');
}

let overall;
try {
  await Promise.race([main(), new Promise((_, reject) => {
    overall = setTimeout(() => reject(new Error('the test took longer than 240 s')), 240000);
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
