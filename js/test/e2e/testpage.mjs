// What the end-to-end tests and the benchmark of js/ share on top of
// sqlsync-test-harness: the coordinator serving the js/ directory (the test
// page page/index.html, dist/, build/), and the test page opened on a
// document.
import { join } from 'node:path';
import { newPage, repoDir, startCoordinator } from 'sqlsync-test-harness';

export const jsDir = join(repoDir, 'js');

/**
 * The generic test mutator shared/wasmhost/testdata/full built by make
 * test-mutators: its "sql" mutation runs the SQL it is given.
 */
export const fullMutator = process.env.SQLSYNC_FULL_WASM ?? join(jsDir, 'build', 'gotest', 'mutators', 'full.wasm');

/**
 * Starts the coordinator serving js/; resolves once it answers, to { url,
 * page, stop } (page: the test page's URL). opts.mutator is the mutator
 * module (.wasm) for every document (default: the todo demo's); opts.args,
 * more arguments of sqlsync serve.
 */
export async function startServer(opts = {}) {
  const server = await startCoordinator({ staticDir: jsDir, mutator: opts.mutator, args: opts.args });
  return { ...server, page: server.url + '/test/e2e/page/index.html' };
}

/** Opens a page of the test app in context and opens a document in it. */
export async function openPage(context, server, opts) {
  const page = await newPage(context);
  await page.goto(server.page);
  await page.waitForFunction(() => window.sq);
  const res = await page.evaluate((o) => window.sq.open(o), opts);
  return { page, ...res };
}
