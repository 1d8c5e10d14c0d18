// Values as a page meets them in Chromium: integers beyond 2^53 come back
// exactly as bigint when the document is opened with bigint: true, and as
// the nearest number otherwise; bigint parameters go in exactly.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startServerAndBrowser, stopServerAndBrowser } from 'sqlsync-test-harness';
import { openPage, startServer } from './testpage.mjs';

let server;
let browser;

before(async () => ({ server, browser } = await startServerAndBrowser(startServer)));
after(() => stopServerAndBrowser(server, browser));

// Each value as [typeof, String(value)], so nothing is lost on the way out
// of the page.
const probe = (page) =>
  page.evaluate(async () => {
    const rows = await sq.query('SELECT 9007199254740993 AS big, -9223372036854775808 AS min, 42 AS small, ? + 0 AS param', [
      9223372036854775807n,
    ]);
    return Object.fromEntries(Object.entries(rows[0]).map(([k, v]) => [k, [typeof v, String(v)]]));
  });

it('integers beyond 2^53: bigint when asked for, the nearest number otherwise', async () => {
  const ctx = await browser.newContext();
  try {
    const exact = await openPage(ctx, server, { docId: 'bigint-on', storage: 'memory', online: false, bigint: true });
    assert.deepEqual(await probe(exact.page), {
      big: ['bigint', '9007199254740993'],
      min: ['bigint', '-9223372036854775808'],
      small: ['number', '42'],
      param: ['bigint', '9223372036854775807'],
    });
    const rounded = await openPage(ctx, server, { docId: 'bigint-off', storage: 'memory', online: false });
    assert.deepEqual(await probe(rounded.page), {
      big: ['number', '9007199254740992'],
      min: ['number', '-9223372036854776000'],
      small: ['number', '42'],
      param: ['number', '9223372036854776000'],
    });
  } finally {
    await ctx.close();
  }
});
