import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRows, encodeArgs, encodeParams, syncUrl, toObjects } from '../../src/values.js';

test('encodeParams', () => {
  assert.equal(encodeParams(undefined), '');
  assert.equal(encodeParams([]), '');
  assert.equal(encodeParams([null, true, 3, 2.5, 's"q', 12n, new Uint8Array([0, 255])]), '[null,true,3,2.5,"s\\"q",12,{"$blob":"AP8="}]');
  assert.throws(() => encodeParams([NaN]), /finite/);
  assert.throws(() => encodeParams([{} as never]), /unsupported/);
});

test('decodeRows and toObjects', () => {
  const raw = decodeRows('{"columns":["id","b","n","inf"],"rows":[["1",{"$blob":"AQI="},null,1e999]]}');
  assert.deepEqual(raw.columns, ['id', 'b', 'n', 'inf']);
  assert.deepEqual(raw.rows[0][1], new Uint8Array([1, 2]));
  assert.equal(raw.rows[0][3], Infinity);
  assert.deepEqual(toObjects(raw), [{ id: '1', b: new Uint8Array([1, 2]), n: null, inf: Infinity }]);
  assert.deepEqual(toObjects(decodeRows('{"columns":[],"rows":[]}')), []);
});

test('decodeRows: integers beyond 2^53 as bigint if asked for', () => {
  const json = '{"columns":["a","b","c"],"rows":[[9007199254740991,{"$int":"9007199254740993"},{"$int":"-9223372036854775808"}]]}';
  assert.deepEqual(decodeRows(json, true).rows[0], [9007199254740991, 9007199254740993n, -9223372036854775808n]);
  // Not asked for: the nearest number, as JSON would give.
  assert.deepEqual(decodeRows(json).rows[0], [9007199254740991, 9007199254740992, -9223372036854775808]);
});

test('encodeArgs', () => {
  assert.equal(new TextDecoder().decode(encodeArgs({ id: '1' })), '{"id":"1"}');
  assert.equal(new TextDecoder().decode(encodeArgs(undefined)), '{}');
  const b = new Uint8Array([1, 2, 3]);
  assert.equal(encodeArgs(b), b);
});

test('syncUrl', () => {
  assert.equal(syncUrl(undefined), '');
  assert.equal(syncUrl('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/v1/sync');
  assert.equal(syncUrl('https://example.test/'), 'wss://example.test/v1/sync');
  assert.equal(syncUrl('wss://example.test/custom/sync'), 'wss://example.test/custom/sync');
  assert.equal(syncUrl('/', 'http://h:1/app/page.html'), 'ws://h:1/v1/sync');
  assert.throws(() => syncUrl('ftp://x'), /http/);
});
