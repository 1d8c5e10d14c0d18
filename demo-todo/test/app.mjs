// What the demo's test, benchmark and profile share on top of
// sqlsync-test-harness: the coordinator serving the built demo (dist/) and
// the demo's results directory.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCoordinator } from 'sqlsync-test-harness';

export const demoDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where screenshots, profiles and benchmark figures go (gitignored). */
export const resultsDir = join(demoDir, 'test-results');

/**
 * Starts the coordinator serving the built demo with the todo mutator, as
 * `make run` does; resolves to { url, stop }. prepare(dataDir) runs first.
 */
export function startDemo(prepare) {
  return startCoordinator({ staticDir: join(demoDir, 'dist'), prepare });
}

/** Saves a screenshot of page as test-results/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, `${name}.png`), fullPage: true });
}
