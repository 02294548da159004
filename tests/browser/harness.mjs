// Shared by the Chromium tests (chat_e2e.mjs, auth_e2e.mjs): options, TAP-like checks, and one
// headless Chromium run with screenshots of every page when a check fails. Test support only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

// `--name VALUE` on the command line, else the environment variable `env`, else `fallback`.
export function option(name, env, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[env] || fallback;
}

let passed = 0;

// Runs one named check: prints "ok - name" or "not ok - name: why" (and rethrows).
export async function check(name, fn) {
  try {
    await fn();
  } catch (error) {
    console.log(`not ok - ${name}: ${String(error?.message ?? error).split('\n').slice(0, 6).join(' | ')}`);
    throw error;
  }
  passed++;
  console.log(`ok - ${name}`);
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// Launches Chromium (a fresh profile), awaits run(context), and exits the process: 0 when every
// check passed, 1 otherwise, after screenshotting each entry of `pages` ({ name, problems }) as
// `${failurePrefix}${name}.png` and awaiting `cleanup` (always).
export async function runInChromium({ label, chromiumPath, shotDir, pages, screenshot, failurePrefix, run, cleanup }) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
  let context = null;
  let failed = false;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      viewport: { width: 1180, height: 720 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60000,
    });
    await run(context);
  } catch (error) {
    failed = true;
    if (!/^not ok/.test(String(error?.message))) console.log(`error: ${error?.stack ?? error}`);
    for (const entry of pages) {
      if (entry.problems.length) console.log(`${entry.name} problems: ${entry.problems.join(' | ')}`);
      await screenshot(entry, `${failurePrefix}${entry.name}.png`).catch(() => {});
    }
    console.log(`screenshots in ${shotDir}`);
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
    if (cleanup) await cleanup();
  }
  if (failed) {
    console.log(`${label}: FAILED after ${passed} checks passed`);
    process.exit(1);
  }
  console.log(`${label}: all ${passed} checks passed; screenshots in ${shotDir}`);
  process.exit(0);
}
