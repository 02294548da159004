// Signing in from parleyd's page with --auth-secret (issue 17), in Debian's Chromium through
// playwright-core. Run by tests/browser_auth_e2e_test.cpp, which starts parleyd with a secret and
// mints the tokens; by hand:
//
//   PARLEY_TOKEN_VALID=... PARLEY_TOKEN_VALID2=... PARLEY_TOKEN_EXPIRED=... PARLEY_TOKEN_FORGED=... \
//     node tests/browser/auth_e2e.mjs --url http://127.0.0.1:PORT
//
// VALID signs in as "alice", VALID2 as "bob", EXPIRED is past its exp, FORGED is signed with
// another secret. Prints "ok - <check>" per passed check and "not ok - <check>: <why>" on the
// first failure; exits 0 only when every check passed.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { assert, check, option, runInChromium } from './harness.mjs';


const baseUrl = option('url', 'PARLEY_URL', '').replace(/\/+$/, '');
const chromiumPath = option('chromium', 'CHROMIUM', '/usr/bin/chromium');
const shotDir = resolve(option('screenshots', 'SCREENSHOT_DIR', 'build/screenshots'));
const tokens = {
  valid: process.env.PARLEY_TOKEN_VALID || '',
  valid2: process.env.PARLEY_TOKEN_VALID2 || '',
  expired: process.env.PARLEY_TOKEN_EXPIRED || '',
  forged: process.env.PARLEY_TOKEN_FORGED || '',
};
const STEP_TIMEOUT_MS = 15000;
// Long enough for the page's first automatic retry (up to 0.5 s, then 1 s, full jitter) to
// have happened had it retried.
const NO_RETRY_WINDOW_MS = 3000;

if (!baseUrl || Object.values(tokens).some((t) => !t)) {
  console.error('usage: PARLEY_TOKEN_{VALID,VALID2,EXPIRED,FORGED}=... node auth_e2e.mjs --url http://127.0.0.1:PORT');
  process.exit(2);
}


const pages = [];

// Opens `path` in a new page, counting the WebSockets it opens and what it logs as errors.
async function open(context, label, path) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const entry = { name: label, page, sockets: [], problems: [] };
  page.on('websocket', (ws) => entry.sockets.push(ws.url()));
  page.on('pageerror', (error) => entry.problems.push(`page error: ${error.message}`));
  pages.push(entry);
  await page.goto(baseUrl + path, { waitUntil: 'load' });
  return entry;
}

async function waitRefused(entry, kind) {
  await entry.page.waitForFunction((k) => document.body.dataset.auth === k &&
    document.body.dataset.conn === 'refused' && !document.getElementById('login').hidden, kind);
}

async function loginError(entry) {
  return entry.page.textContent('#login-error');
}

// The refusal must be final: no further connection attempts while the page waits for the user.
async function assertNoRetry(entry) {
  const before = entry.sockets.length;
  await entry.page.waitForTimeout(NO_RETRY_WINDOW_MS);
  assert(entry.sockets.length === before, `the page retried: ${entry.sockets.length - before} more connections`);
}

async function waitSignedInAs(entry, name) {
  await entry.page.waitForFunction((n) => document.body.dataset.conn === 'connected' &&
    !document.getElementById('app').hidden && document.getElementById('me-name').textContent === n, name);
}

async function screenshot(entry, file) {
  mkdirSync(shotDir, { recursive: true });
  await entry.page.screenshot({ path: join(shotDir, file) });
}

async function run(context) {
  await check('no token: the page says a sign-in token is needed and shows the paste field', async () => {
    const entry = await open(context, 'no-token', '/');
    await waitRefused(entry, 'missing');
    const text = await loginError(entry);
    assert(/needs a sign-in token/.test(text), `login error was: ${text}`);
    assert(await entry.page.isVisible('#login-token'), 'no token field');
    assert(!(await entry.page.isVisible('#login-name')), 'the name field is still shown');
    await assertNoRetry(entry);
    await screenshot(entry, 'auth-no-token.png');
  });

  await check('expired token in the fragment: the page says it expired, and drops it from the address bar', async () => {
    const entry = await open(context, 'expired', `/#token=${tokens.expired}`);
    await waitRefused(entry, 'expired');
    const text = await loginError(entry);
    assert(/expired/.test(text), `login error was: ${text}`);
    assert(entry.page.url() === `${baseUrl}/`, `address bar still holds: ${entry.page.url()}`);
    assert(!entry.sockets.some((url) => url.includes(tokens.expired)), 'the token went into the WebSocket URL');
    await assertNoRetry(entry);
    await screenshot(entry, 'auth-expired.png');
  });

  await check('a forged token pasted into the field: the page says it was not accepted', async () => {
    const entry = pages.find((p) => p.name === 'expired');
    await entry.page.fill('#login-token', tokens.forged);
    await entry.page.click('#login-button');
    await waitRefused(entry, 'invalid');
    const text = await loginError(entry);
    assert(/not accepted \(invalid token: bad_signature\)/.test(text), `login error was: ${text}`);
  });

  await check('then a valid token pasted into the field signs in as its subject', async () => {
    const entry = pages.find((p) => p.name === 'expired');
    await entry.page.fill('#login-token', tokens.valid2);
    await entry.page.click('#login-button');
    await waitSignedInAs(entry, 'bob');
    await entry.page.waitForFunction(() => document.getElementById('conv-title').textContent.includes('lobby'));
  });

  await check('valid token in the fragment: signed in as alice at once, the token gone from the address bar', async () => {
    const entry = await open(context, 'valid', `/#token=${tokens.valid}`);
    await waitSignedInAs(entry, 'alice');
    assert(entry.page.url() === `${baseUrl}/`, `address bar still holds: ${entry.page.url()}`);
    assert(entry.sockets.every((url) => url === baseUrl.replace(/^http/, 'ws') + '/chat'),
      `WebSocket URLs: ${entry.sockets.join(', ')}`);
    await entry.page.waitForFunction(() => document.getElementById('conv-title').textContent.includes('lobby'));
    await screenshot(entry, 'auth-signed-in.png');
  });

  await check('a reload keeps the tab signed in (the token is kept for the tab, not in the URL)', async () => {
    const entry = pages.find((p) => p.name === 'valid');
    await entry.page.reload({ waitUntil: 'load' });
    await waitSignedInAs(entry, 'alice');
  });

  await check('no page logged an error', async () => {
    const problems = pages.flatMap((p) => p.problems.map((x) => `${p.name}: ${x}`));
    assert(problems.length === 0, problems.join(' | '));
  });
}

runInChromium({
  label: 'browser auth e2e', chromiumPath, shotDir, pages, screenshot, failurePrefix: 'failure-auth-', run,
});
