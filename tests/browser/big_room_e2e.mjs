// The page in a room over 100 members (issue 18, docs/protocol.md "Presence in big rooms"), in
// Debian's Chromium through playwright-core. Run by tests/browser_big_room_e2e_test.cpp; by hand:
//
//   node tests/browser/big_room_e2e.mjs --url http://127.0.0.1:PORT
//
// alice signs in to "big"; a crowd of 150 WebSockets (opened from a second page) joins it: the
// first 99 are told as `joined`, the rest in batched `members` events. alice's people list and
// header must show all 151, and after 60 of the crowd leave, 91. Prints "ok - <check>" per passed
// check; exits 0 only when every check passed.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { assert, check, option, runInChromium } from './harness.mjs';

const baseUrl = option('url', 'PARLEY_URL', '').replace(/\/+$/, '');
const chromiumPath = option('chromium', 'CHROMIUM', '/usr/bin/chromium');
const shotDir = resolve(option('screenshots', 'SCREENSHOT_DIR', 'build/screenshots'));
const STEP_TIMEOUT_MS = 20000;
const CROWD = 150;
const LEAVERS = 60;

if (!baseUrl) {
  console.error('usage: node big_room_e2e.mjs --url http://127.0.0.1:PORT');
  process.exit(2);
}

const pages = [];

async function open(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const entry = { name: label, page, problems: [] };
  page.on('pageerror', (error) => entry.problems.push(`page error: ${error.message}`));
  pages.push(entry);
  await page.goto(baseUrl + '/', { waitUntil: 'load' });
  return entry;
}

async function screenshot(entry, file) {
  mkdirSync(shotDir, { recursive: true });
  await entry.page.screenshot({ path: join(shotDir, file) });
}

// Waits until alice's people list holds `count` names and the header says so.
async function waitCount(entry, count) {
  await entry.page.waitForFunction((n) =>
    document.querySelectorAll('#people-list [data-user]').length === n &&
    document.getElementById('conv-sub').textContent === `${n} ${n === 1 ? 'person' : 'people'} online`, count);
}

async function run(context) {
  const alice = await open(context, 'alice');
  await check('alice signs in to room big', async () => {
    await alice.page.fill('#login-name', 'alice');
    await alice.page.fill('#login-room', 'big');
    await alice.page.click('#login-button');
    await waitCount(alice, 1);
  });

  // The crowd: plain WebSockets from another page of the same origin (the page's own protocol).
  const crowd = await open(context, 'crowd');
  await check(`a crowd of ${CROWD} joins: alice's list shows all ${CROWD + 1}`, async () => {
    const joined = await crowd.page.evaluate(async (n) => {
      const url = location.origin.replace(/^http/, 'ws') + '/chat';
      window.crowd = [];
      const ready = [];
      for (let i = 0; i < n; i++) {
        const ws = new WebSocket(url);
        window.crowd.push(ws);
        ready.push(new Promise((done, fail) => {
          ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', name: `crowd${String(i).padStart(3, '0')}` }));
          ws.onmessage = (event) => {
            const message = JSON.parse(event.data);
            if (message.type === 'welcome') ws.send(JSON.stringify({ type: 'join', room: 'big' }));
            if (message.type === 'history') done(true);
            if (message.type === 'error') fail(new Error(event.data));
          };
          ws.onerror = () => fail(new Error('crowd socket failed'));
        }));
        // One at a time at first: the joins then span several 50 ms batches.
        if (i % 10 === 9) await Promise.all(ready.slice(-10));
      }
      return (await Promise.all(ready)).length;
    }, CROWD);
    assert(joined === CROWD, `only ${joined} of the crowd joined`);
    await waitCount(alice, CROWD + 1);
    await screenshot(alice, 'big-room.png');
  });

  await check(`${LEAVERS} of the crowd leave: alice's list shows ${CROWD + 1 - LEAVERS}`, async () => {
    await crowd.page.evaluate((n) => { for (const ws of window.crowd.slice(0, n)) ws.close(1000); }, LEAVERS);
    await waitCount(alice, CROWD + 1 - LEAVERS);
    const names = await alice.page.$$eval('#people-list [data-user]', (nodes) => nodes.map((b) => b.dataset.user));
    assert(!names.includes('crowd000') && names.includes(`crowd${CROWD - 1}`), `wrong names left: ${names.slice(0, 5)}`);
    assert(alice.problems.length === 0, alice.problems.join(' | '));
  });
}

runInChromium({ label: 'browser big room e2e', chromiumPath, shotDir, pages, screenshot, failurePrefix: 'failure-big-', run });
