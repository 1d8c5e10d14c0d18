import type { Param, RawRows, Row, Value } from './types.js';

// Values cross to the Go side as JSON; blobs as {"$blob": base64}.

function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** encodeParams returns the JSON the Go side decodes as query parameters. */
export function encodeParams(params: readonly Param[] | undefined): string {
  if (!params || params.length === 0) return '';
  return (
    '[' +
    params
      .map((p, i) => {
        if (p === null || p === undefined) return 'null';
        if (p instanceof Uint8Array) return JSON.stringify({ $blob: toBase64(p) });
        switch (typeof p) {
          case 'bigint':
            return p.toString();
          case 'number':
            if (!Number.isFinite(p)) throw new TypeError(`param ${i + 1}: ${p} is not a finite number`);
            return JSON.stringify(p);
          case 'boolean':
          case 'string':
            return JSON.stringify(p);
        }
        throw new TypeError(`param ${i + 1}: unsupported ${typeof p}`);
      })
      .join(',') +
    ']'
  );
}

function decodeValue(v: unknown, bigint: boolean): Value {
  if (v !== null && typeof v === 'object') {
    const o = v as { $blob?: string; $int?: string };
    if (o.$int !== undefined) return bigint ? BigInt(o.$int) : Number(o.$int);
    return fromBase64(o.$blob ?? '');
  }
  return v as Value;
}

/**
 * decodeRows parses the Go side's rows JSON: blobs arrive as
 * {"$blob": base64}, integers beyond ±(2^53−1) as {"$int": decimal},
 * which become bigints if asked for, else the nearest number.
 */
export function decodeRows(json: string, bigint = false): RawRows {
  const raw = JSON.parse(json) as { columns: string[]; rows: unknown[][] };
  let hasObjects = false;
  for (const row of raw.rows) {
    for (const v of row) {
      if (v !== null && typeof v === 'object') hasObjects = true;
    }
  }
  if (hasObjects) raw.rows = raw.rows.map((row) => row.map((v) => decodeValue(v, bigint)));
  return raw as RawRows;
}

/** toObjects turns rows into objects keyed by column name. */
export function toObjects<T = Row>(r: RawRows): T[] {
  return r.rows.map((row) => {
    const o: Record<string, Value> = {};
    r.columns.forEach((c, i) => {
      o[c] = row[i] ?? null;
    });
    return o as T;
  });
}

/** encodeArgs turns mutation args into the bytes the mutator receives. */
export function encodeArgs(args: unknown): Uint8Array {
  if (args instanceof Uint8Array) return args;
  return new TextEncoder().encode(JSON.stringify(args ?? {}));
}

/** syncUrl turns the app's coordinator URL into the sync endpoint. */
export function syncUrl(url: string | undefined, base?: string): string {
  if (!url) return '';
  const u = new URL(url, base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new TypeError(`url: want http(s) or ws(s), got ${u.protocol}`);
  }
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1/sync';
  return u.toString();
}
