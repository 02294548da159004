// End-to-end test of parleyd's browser page (chat/web/) in Debian's Chromium, through
// playwright-core. Run by tests/browser_e2e_test.cpp; by hand:
//
//   node tests/browser/chat_e2e.mjs --parleyd build/parleyd          (starts its own server)
//   node tests/browser/chat_e2e.mjs --url http://127.0.0.1:PORT      (restart handshake below)
//
// With --url, when the test needs parleyd restarted on the same port it prints the line
// "@@restart-parleyd" and waits for one line on stdin: "ok" once a new server listens, anything
// else to fail. Prints "ok - <check>" per passed check and "not ok - <check>: <why>" on the
// first failure; exits 0 only when every check passed.
//
// Options (or env): --url (PARLEY_URL), --parleyd (PARLEYD), --chromium (CHROMIUM, default
// /usr/bin/chromium), --screenshots DIR (SCREENSHOT_DIR, default build/screenshots).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { assert, check, option, runInChromium } from './harness.mjs';

// ----------------------------------------------------------------------------------------------
// Arguments


let baseUrl = option('url', 'PARLEY_URL', '');
const parleydBin = option('parleyd', 'PARLEYD', '');
const chromiumPath = option('chromium', 'CHROMIUM', '/usr/bin/chromium');
const shotDir = resolve(option('screenshots', 'SCREENSHOT_DIR', 'build/screenshots'));
const STEP_TIMEOUT_MS = 15000;
const RECONNECT_TIMEOUT_MS = 40000;

if (!baseUrl && !parleydBin) {
  console.error('usage: node chat_e2e.mjs --url http://127.0.0.1:PORT | --parleyd PATH/TO/parleyd');
  process.exit(2);
}

// ----------------------------------------------------------------------------------------------
// The server: given (--url, restarted by our parent) or our own child (--parleyd).

let ownServer = null;

function startOwnServer(listen) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(parleydBin, ['--listen', listen], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`parleyd did not print its listening line: ${out}`)), 10000);
    child.on('exit', (code) => reject(new Error(`parleyd exited with ${code}: ${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening on ([\d.]+):(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        ownServer = child;
        resolvePromise(`http://${m[1]}:${m[2]}`);
      }
    });
  });
}

function stopOwnServer() {
  return new Promise((resolvePromise) => {
    if (!ownServer || ownServer.exitCode !== null) return resolvePromise();
    ownServer.once('exit', () => resolvePromise());
    ownServer.kill('SIGTERM');
  });
}

let stdinLines = null;
async function restartServer() {
  if (ownServer) {
    const port = new URL(baseUrl).port;
    await stopOwnServer();
    await startOwnServer(`127.0.0.1:${port}`);
    return;
  }
  if (!stdinLines) stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log('@@restart-parleyd');
  const { value, done } = await stdinLines.next();
  if (done) throw new Error('stdin closed while waiting for the restart');
  if (value.trim() !== 'ok') throw new Error(`restart failed: ${value}`);
}

// ----------------------------------------------------------------------------------------------
// Checks


// ----------------------------------------------------------------------------------------------
// Page helpers

const pages = [];  // { name, page, dialogs: [], problems: [] }

async function openPage(context, label, reuse) {
  const page = reuse || (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const entry = { name: label, page, dialogs: [], problems: [] };
  page.on('dialog', async (dialog) => {
    entry.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => entry.problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    // Expected while parleyd restarts: Chromium logs each refused reconnection attempt.
    if (/WebSocket connection to .* failed/.test(text) || /ERR_CONNECTION_REFUSED/.test(text)) return;
    entry.problems.push(`console error: ${text}`);
  });
  pages.push(entry);
  await page.goto(baseUrl + '/', { waitUntil: 'load' });
  return entry;
}

async function login(entry, name, room = 'lobby') {
  const { page } = entry;
  await page.fill('#login-name', name);
  await page.fill('#login-room', room);
  await page.click('#login-button');
}

async function waitSignedIn(entry) {
  await entry.page.waitForFunction(() => document.body.dataset.conn === 'connected' &&
    !document.getElementById('app').hidden && document.getElementById('me-name').textContent !== '');
}

// Waits until the people list of the page shows exactly `names` (any order).
async function waitPeople(entry, names) {
  await entry.page.waitForFunction((want) => {
    const have = [...document.querySelectorAll('#people-list [data-user]')].map((b) => b.dataset.user).sort();
    return JSON.stringify(have) === JSON.stringify([...want].sort());
  }, names);
}

async function activeTitle(entry) {
  return entry.page.textContent('#conv-title');
}

// Messages in the conversation on screen with this author and text.
async function countMessages(entry, from, text) {
  return entry.page.$$eval('#messages .msg', (nodes, [f, t]) =>
    nodes.filter((n) => n.dataset.from === f && n.querySelector('.text')?.textContent === t).length, [from, text]);
}

async function waitMessage(entry, from, text) {
  await entry.page.waitForFunction(([f, t]) =>
    [...document.querySelectorAll('#messages .msg:not(.pending)')]
      .some((n) => n.dataset.from === f && n.querySelector('.text')?.textContent === t), [from, text]);
}

async function send(entry, text) {
  const { page } = entry;
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
  // Our own message is shown at once and loses .pending when the server's ack arrives.
  await page.waitForFunction((t) => [...document.querySelectorAll('#messages .msg.mine')]
    .some((n) => n.querySelector('.text')?.textContent === t && !n.classList.contains('pending')), text);
}

async function openConversation(entry, key) {
  await entry.page.click(`#sidebar button[data-key="${key}"]`);
}

async function screenshot(entry, file) {
  mkdirSync(shotDir, { recursive: true });
  await entry.page.screenshot({ path: join(shotDir, file) });
}

// ----------------------------------------------------------------------------------------------
// The scenario

async function run(context) {
  const alice = await openPage(context, 'alice', context.pages()[0]);
  const bob = await openPage(context, 'bob');

  await check('page is served with a strict Content-Security-Policy', async () => {
    const response = await alice.page.request.get(baseUrl + '/');
    const csp = response.headers()['content-security-policy'] ?? '';
    assert(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"), `CSP was: ${csp}`);
    assert(response.headers()['x-content-type-options'] === 'nosniff', 'no nosniff header');
  });

  await check('alice and bob sign in and join lobby', async () => {
    await alice.page.fill('#login-name', 'alice');
    await screenshot(alice, 'login.png');
    await login(alice, 'alice');
    await waitSignedIn(alice);
    await login(bob, 'bob');
    await waitSignedIn(bob);
    assert((await activeTitle(alice)) === 'lobby', `alice's title is ${await activeTitle(alice)}`);
  });

  await check('both see each other in the presence list', async () => {
    await waitPeople(alice, ['alice', 'bob']);
    await waitPeople(bob, ['alice', 'bob']);
  });

  const hello = 'Hi alice! Is the new build up yet?';
  await check('typing indicator appears on the other page', async () => {
    await bob.page.click('#composer-input');
    await bob.page.keyboard.type(hello.slice(0, 12), { delay: 15 });
    await alice.page.waitForFunction(() => document.getElementById('typing').textContent === 'bob is typing…');
  });

  await check('typing indicator goes when the message is sent', async () => {
    await bob.page.fill('#composer-input', hello);
    await bob.page.press('#composer-input', 'Enter');
    await alice.page.waitForFunction(() => document.getElementById('typing').textContent === '');
  });

  await check("bob's message appears exactly once on alice's page, from bob", async () => {
    await waitMessage(alice, 'bob', hello);
    const reply = 'Yes, it went out ten minutes ago.';
    await send(alice, reply);
    await waitMessage(bob, 'alice', reply);  // a round trip after bob's message: no late copy
    assert((await countMessages(alice, 'bob', hello)) === 1, 'not exactly one copy on alice');
    assert((await countMessages(bob, 'bob', hello)) === 1, 'not exactly one copy on bob');
    const author = await alice.page.$eval('#messages .msg[data-from="bob"] .author', (n) => n.textContent);
    assert(author === 'bob', `author shown as ${author}`);
  });

  const carol = await openPage(context, 'carol');
  const secret = 'psst alice: the staging password is in the vault';
  await check('a direct message reaches only its target', async () => {
    await login(carol, 'carol');
    await waitSignedIn(carol);
    await waitPeople(alice, ['alice', 'bob', 'carol']);
    await waitPeople(bob, ['alice', 'bob', 'carol']);
    await bob.page.click('#people-list button[data-user="alice"]');
    assert((await activeTitle(bob)) === '@alice', `bob's title is ${await activeTitle(bob)}`);
    await send(bob, secret);
    // Unread badge on alice's side, then the message itself.
    await alice.page.waitForFunction(() =>
      document.querySelector('#dm-list button[data-key="d:bob"] .badge')?.textContent === '1 unread');
    await openConversation(alice, 'd:bob');
    await waitMessage(alice, 'bob', secret);
    // bob then posts in lobby; once carol has that, a stray DM copy would already be there too.
    await openConversation(bob, 'r:lobby');
    const after = 'Welcome, carol!';
    await send(bob, after);
    await waitMessage(carol, 'bob', after);
    const carolText = await carol.page.evaluate(() => document.body.textContent);
    assert(!carolText.includes(secret), 'carol saw the DM');
    assert((await carol.page.$$('#dm-list li')).length === 0, 'carol has a DM conversation');
    await openConversation(alice, 'r:lobby');
  });

  await check('a text over the server limit (UTF-8 bytes) is not sent; the user is told and keeps it', async () => {
    // 2,100 characters, 4,200 UTF-8 bytes: over welcome's max_text (4096) only when counted in bytes.
    const long = 'é'.repeat(2100);
    const before = await alice.page.$$eval('#messages .msg.mine', (nodes) => nodes.length);
    await alice.page.fill('#composer-input', long);
    await alice.page.press('#composer-input', 'Enter');
    await alice.page.waitForFunction(() => [...document.querySelectorAll('#toasts .toast')]
      .some((n) => n.textContent.includes('too long') && n.textContent.includes('4096')));
    assert(await alice.page.$eval('#composer-input', (n) => n.value.length) === 2100, 'the text left the message box');
    assert(await alice.page.$$eval('#messages .msg.mine', (nodes) => nodes.length) === before, 'a message was shown as sent');
    assert(await alice.page.evaluate(() => document.body.dataset.conn) === 'connected', 'the connection dropped');
    await alice.page.fill('#composer-input', '');
  });

  // Screenshots for people (and the README): a conversation in progress, carol typing.
  await carol.page.click('#composer-input');
  await carol.page.keyboard.type('Thanks! Wh', { delay: 10 });
  await alice.page.waitForFunction(() => document.getElementById('typing').textContent === 'carol is typing…');
  await screenshot(alice, 'alice.png');
  await screenshot(bob, 'bob.png');
  await carol.page.setViewportSize({ width: 375, height: 720 });
  await carol.page.fill('#composer-input', '');
  await screenshot(carol, 'carol-375px.png');
  await carol.page.click('#toggle-rooms');
  await carol.page.waitForTimeout(300);  // the drawer slides in
  await screenshot(carol, 'carol-375px-rooms.png');
  await carol.page.keyboard.press('Escape');
  await carol.page.setViewportSize({ width: 1180, height: 720 });

  const evilName = '<script>alert(1)</script>';
  const evilText = '<img src=x onerror="alert(2)"> <script>alert(3)</script> <b>not bold</b> & "quotes"';
  const mallory = await openPage(context, 'mallory');
  await check('a user named <script>alert(1)</script> is shown as text', async () => {
    await login(mallory, evilName);
    await mallory.page.waitForSelector('#login-error:not([hidden])');
    const error = await mallory.page.$eval('#login-error', (n) => ({ text: n.textContent, children: n.children.length }));
    assert(error.text.includes(`“${evilName}”`), `error was: ${error.text}`);
    assert(error.children === 0, 'the error holds elements');
    assert((await mallory.page.$$('script:not([src])')).length === 0, 'an inline script element exists');
  });

  await check('markup in a message is shown as text, and counts as unread elsewhere', async () => {
    await login(mallory, 'mallory');
    await waitSignedIn(mallory);
    // alice looks at another room, so lobby's unread count must go up.
    await alice.page.fill('#join-room', 'dev-ops');
    await alice.page.press('#join-room', 'Enter');
    await alice.page.waitForFunction(() => document.getElementById('conv-title').textContent === 'dev-ops');
    await send(mallory, evilText);
    await alice.page.waitForFunction(() =>
      document.querySelector('#room-list button[data-key="r:lobby"] .badge')?.textContent === '1 unread');
    await openConversation(alice, 'r:lobby');
    await waitMessage(alice, 'mallory', evilText);
    await waitMessage(bob, 'mallory', evilText);
    for (const entry of [alice, bob]) {
      const injected = await entry.page.$$('#messages img, #messages script, #messages b');
      assert(injected.length === 0, `${entry.name}'s page has elements from the message`);
    }
    assert((await alice.page.$$('#room-list button[data-key="r:lobby"] .badge:not([hidden])')).length === 0,
      'unread badge not cleared');
  });
  await screenshot(bob, 'bob-markup-as-text.png');

  await check('after a page reload alice is back in her rooms, with what she missed (issue 14)', async () => {
    for (const entry of [alice, bob]) {
      await entry.page.fill('#join-room', 'ops');
      await entry.page.press('#join-room', 'Enter');
      await entry.page.waitForSelector('#sidebar button[data-key="r:ops"]');
    }
    await openConversation(alice, 'r:ops');
    await send(alice, 'before the reload');
    await waitMessage(bob, 'alice', 'before the reload');
    await alice.page.reload({ waitUntil: 'load' });
    // alice is away: bob talks in ops.
    const missed = 'said while alice was reloading';
    await openConversation(bob, 'r:ops');
    await send(bob, missed);
    await alice.page.waitForTimeout(300);  // the server notices the old connection is gone
    await login(alice, 'alice', 'lobby');
    await waitSignedIn(alice);
    await alice.page.waitForSelector('#sidebar button[data-key="r:ops"]');
    await openConversation(alice, 'r:ops');
    await waitMessage(alice, 'bob', missed);
    assert((await countMessages(alice, 'bob', missed)) === 1, 'not exactly one copy after the reload');
    await waitPeople(alice, ['alice', 'bob']);
    await openConversation(alice, 'r:lobby');
    await openConversation(bob, 'r:lobby');
  });

  await check('no dialog fired and no page errors', async () => {
    await alice.page.waitForTimeout(300);
    for (const entry of pages) {
      assert(entry.dialogs.length === 0, `${entry.name}: dialog ${entry.dialogs.join(', ')}`);
      assert(entry.problems.length === 0, `${entry.name}: ${entry.problems.join(' | ')}`);
    }
  });

  await mallory.page.close();

  await check('after parleyd restarts on the same port, the pages reconnect by themselves', async () => {
    for (const entry of [alice, bob]) {
      await entry.page.evaluate(() => {
        window.__connStates = [];
        new MutationObserver(() => window.__connStates.push(document.body.dataset.conn))
          .observe(document.body, { attributes: true, attributeFilter: ['data-conn'] });
      });
    }
    await restartServer();
    for (const entry of [alice, bob]) {
      await entry.page.waitForFunction(() => window.__connStates.includes('reconnecting') &&
        document.body.dataset.conn === 'connected', null, { timeout: RECONNECT_TIMEOUT_MS });
    }
    // carol's page is still open too and comes back with them.
    await waitPeople(alice, ['alice', 'bob', 'carol']);
    await waitPeople(bob, ['alice', 'bob', 'carol']);
  });

  await check('and can chat again', async () => {
    const again = 'Back after the restart.';
    await send(alice, again);
    await waitMessage(bob, 'alice', again);
    await bob.page.waitForTimeout(200);
    assert((await countMessages(bob, 'alice', again)) === 1, 'not exactly one copy');
    await screenshot(alice, 'alice-after-restart.png');
  });
}

// ----------------------------------------------------------------------------------------------

async function main() {
  if (!baseUrl) baseUrl = await startOwnServer('127.0.0.1:0');
  baseUrl = baseUrl.replace(/\/+$/, '');
  await runInChromium({
    label: 'browser e2e', chromiumPath, shotDir, pages, screenshot, failurePrefix: 'failure-', run,
    cleanup: stopOwnServer,
  });
}

main();
