// The JavaScript half of the browser's mutator host (the Go half is
// wasm/jsmutator): it instantiates a mutator module on the browser's own
// WebAssembly engine with the host imports, a WASI shim with the same fixed
// values as the coordinator's (docs/mutator-abi.md, "The sandbox"), and a
// tick that stops a call past its time limit, and it wraps the guest's
// exports so that one mutation costs Go two cheap calls into JavaScript.
// Only sqlsync.run and sqlsync.result cross into Go (js.FuncOf, tens of µs
// each); everything else the guest imports is plain JavaScript here.
//
// installMutatorHost makes it globalThis.sqlsyncMutatorHost; the worker
// script calls it, and so does the runner of the Go tests in Chromium.

/**
 * What the Go half passes to instantiate. A request and a response cross
 * in the instance's staging buffer io, which both halves hold: only
 * numbers cross as arguments (views of guest memory would cost each call
 * several µs more in Go).
 */
export interface GoHooks {
  /**
   * sqlsync.run: the request is io[0, reqLen). Returns the response's
   * length n, the response itself in io[0, n) when n <= outCap; or a
   * message that traps the guest. io is passed when it was replaced.
   */
  run(reqLen: number, outCap: number, io?: Uint8Array): number | string;
  /** sqlsync.result, likewise: the kept response, in io if it fits. */
  result(outCap: number): number | string;
  /** Returns the first `total` (or more) bytes of the guest's random stream. */
  random(total: number): Uint8Array;
}

export interface InstanceOptions {
  /** The start of the random stream every instance reads. */
  random: Uint8Array;
  /** Output bytes kept per call, for the Go side to log (it applies its own budget). */
  outputCap: number;
  /** The WASI wall clock, in seconds since the epoch. */
  walltime: number;
  /** The monotonic clock's step per reading, in nanoseconds. */
  monotonicStep: number;
}

// Outcomes of a call, as negative numbers (non-negative: 2 × the length of
// the error record copied to io, plus 1 if the call wrote output).
const FAIL_TRAP = -1;
const FAIL_EXIT = -2;
const FAIL_TIME = -3;

/** A trap of the host's own making: the guest broke the ABI. */
class HostTrap extends Error {}
/** Thrown by the tick once the call's deadline has passed. */
class TimeLimit extends Error {}
/** Thrown by proc_exit. */
class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`exited with code ${code}`);
  }
}

// WASI errno values the shim returns.
const ESUCCESS = 0;
const EBADF = 8;
const EFAULT = 21;
const EINVAL = 28;
const ESPIPE = 70;

/**
 * The tick module: imports a JavaScript function and exports a WebAssembly
 * function calling it, which can go in the guest's funcref table (a table
 * holds only WebAssembly functions).
 *   (import "h" "t" (func)) (func (export "t") call 0)
 */
const tickModuleBytes = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
  0x02, 0x07, 0x01, 0x01, 0x68, 0x01, 0x74, 0x00, 0x00, // import "h" "t" func 0
  0x03, 0x02, 0x01, 0x00, // function section: one of type 0
  0x07, 0x05, 0x01, 0x01, 0x74, 0x00, 0x01, // export "t" func 1
  0x0a, 0x06, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0b, // code: call 0
]);
let tickModule: WebAssembly.Module | undefined;

/** Output the guest wrote during one call, bounded. */
class Output {
  private chunks: { stream: number; bytes: Uint8Array }[] = [];
  private size = 0;
  private dropped = 0;
  constructor(private cap: number) {}
  begin(): void {
    this.chunks = [];
    this.size = 0;
    this.dropped = 0;
  }
  get any(): boolean {
    return this.size > 0 || this.dropped > 0;
  }
  write(stream: number, bytes: Uint8Array): void {
    const room = this.cap - this.size;
    if (bytes.length > room) {
      this.dropped += bytes.length - Math.max(room, 0);
      bytes = bytes.subarray(0, Math.max(room, 0));
    }
    if (bytes.length === 0) return;
    this.chunks.push({ stream, bytes: bytes.slice() });
    this.size += bytes.length;
  }
  /** Encodes the output as records (stream u8, length u32 LE, bytes), then (255, dropped) if any was dropped. */
  take(): Uint8Array {
    const out = new Uint8Array(this.size + 5 * (this.chunks.length + 1));
    const dv = new DataView(out.buffer);
    let at = 0;
    for (const c of this.chunks) {
      out[at] = c.stream;
      dv.setUint32(at + 1, c.bytes.length, true);
      out.set(c.bytes, at + 5);
      at += 5 + c.bytes.length;
    }
    if (this.dropped > 0) {
      out[at] = 255;
      dv.setUint32(at + 1, this.dropped, true);
      at += 5;
    }
    this.begin();
    return out.subarray(0, at);
  }
}

interface GuestExports {
  memory: WebAssembly.Memory;
  _initialize?: () => void;
  sqlsync_abi_version: () => number;
  sqlsync_alloc: (size: number) => number;
  sqlsync_mutate: (namePtr: number, nameLen: number, argsPtr: number, argsLen: number) => bigint;
  sqlsync_migrate: () => bigint;
  sqlsync_tick?: WebAssembly.Table;
  /** Set by the rewritten module when a memory.grow fails (docs/mutator-abi.md). */
  sqlsync_grow_failed?: WebAssembly.Global;
}

/** One instance of a mutator module, driven by the Go half. */
export class GuestInstance {
  /**
   * The staging buffer both halves hold: a call's input (from Go), its
   * error record (to Go), the requests and responses of sqlsync.run and
   * sqlsync.result. It only grows; an error record (at most 64 KiB) always
   * fits without replacing it.
   */
  io = new Uint8Array(65 << 10);
  /** Set after a failed call: what happened. */
  failure = '';
  /** Set after a call that ended in proc_exit. */
  exitCode = 0;
  /** Whether the module calls the tick (it was rewritten by package interrupt). */
  ticks = false;

  private ex!: GuestExports;
  private output: Output;
  private active = false;
  private deadline = Infinity;
  private inPtr = 0;
  private inCap = 0;
  private randomAt = 0;
  private random: Uint8Array;
  private monotonic = 0;

  private constructor(
    private go: GoHooks,
    private opts: InstanceOptions,
  ) {
    this.output = new Output(opts.outputCap);
    this.random = opts.random;
    this.monotonic = -opts.monotonicStep;
  }

  /** Instantiates module; the guest's _initialize has not run yet. */
  static async create(module: WebAssembly.Module, go: GoHooks, opts: InstanceOptions): Promise<GuestInstance> {
    const g = new GuestInstance(go, opts);
    const instance = await WebAssembly.instantiate(module, g.imports());
    g.ex = instance.exports as unknown as GuestExports;
    const table = g.ex.sqlsync_tick;
    if (table instanceof WebAssembly.Table) {
      tickModule ??= new WebAssembly.Module(tickModuleBytes);
      const tick = new WebAssembly.Instance(tickModule, {
        h: {
          t: () => {
            if (performance.now() > g.deadline) throw new TimeLimit('time limit');
          },
        },
      });
      table.set(0, tick.exports.t as unknown as (...args: unknown[]) => unknown);
      g.ticks = true;
    }
    return g;
  }

  /** Copies a response Go left in io to the guest's output buffer, if it fits there. */
  private respond(n: number | string, fn: string, outPtr: number, outCap: number): number {
    if (typeof n === 'string') throw new HostTrap(n);
    if (n > 0 && n <= outCap) {
      const mem = new Uint8Array(this.ex.memory.buffer);
      if (outPtr + n > mem.length) throw new HostTrap(`sqlsync.${fn}: output buffer at ${outPtr}+${n} lies outside memory`);
      mem.set(this.io.subarray(0, n), outPtr);
    }
    return n;
  }

  /** Grows io to at least n bytes, returning it. */
  ensureIO(n: number): Uint8Array {
    if (this.io.length < n) this.io = new Uint8Array(Math.max(n, 2 * this.io.length));
    return this.io;
  }

  /** Runs _initialize, if exported. */
  initialize(timeoutMs: number): number {
    return this.call(timeoutMs, () => {
      this.ex._initialize?.();
      return 0n;
    });
  }

  /** Returns sqlsync_abi_version(), or a negative failure. */
  version(timeoutMs: number): number {
    let v = 0;
    const r = this.call(timeoutMs, () => {
      v = this.ex.sqlsync_abi_version() >>> 0;
      return 0n;
    });
    return r < 0 ? r : v;
  }

  /** Runs sqlsync_mutate on the name and args Go put at the start of io. */
  mutate(nameLen: number, argsLen: number, timeoutMs: number): number {
    return this.call(timeoutMs, () => {
      const need = nameLen + argsLen;
      if (this.inPtr === 0 || need > this.inCap) {
        const size = Math.max(need, 1024);
        const ptr = this.ex.sqlsync_alloc(size) >>> 0;
        if (ptr === 0) throw new HostTrap(`sqlsync_alloc(${size}) returned 0`);
        this.inPtr = ptr;
        this.inCap = size;
      }
      const mem = new Uint8Array(this.ex.memory.buffer);
      if (this.inPtr + need > mem.length) throw new HostTrap(`sqlsync_alloc returned ${this.inPtr}, outside memory`);
      mem.set(this.io.subarray(0, need), this.inPtr);
      return this.ex.sqlsync_mutate(this.inPtr, nameLen, this.inPtr + nameLen, argsLen);
    });
  }

  /** Runs sqlsync_migrate. */
  migrate(timeoutMs: number): number {
    return this.call(timeoutMs, () => this.ex.sqlsync_migrate());
  }

  /** The output of the last call (see Output.take). */
  takeOutput(): Uint8Array {
    return this.output.take();
  }

  private call(timeoutMs: number, f: () => bigint): number {
    this.output.begin();
    // Cleared here rather than from Go: one crossing fewer per call.
    if (this.ex.sqlsync_grow_failed) this.ex.sqlsync_grow_failed.value = 0;
    this.failure = '';
    this.exitCode = 0;
    this.active = true;
    this.deadline = performance.now() + timeoutMs;
    try {
      const r = BigInt.asUintN(64, f());
      return 2 * this.record(r) + (this.output.any ? 1 : 0);
    } catch (e) {
      return this.fail(e);
    } finally {
      this.active = false;
      this.deadline = Infinity;
    }
  }

  /** Copies the error record packed in r (0: none) to io; returns its length. */
  private record(r: bigint): number {
    if (r === 0n) return 0;
    const ptr = Number(r >> 32n);
    const n = Number(r & 0xffffffffn);
    if (n === 0) throw new HostTrap(`empty error record at ${ptr}`);
    const take = Math.min(n, 64 << 10);
    const mem = new Uint8Array(this.ex.memory.buffer);
    if (ptr + take > mem.length) throw new HostTrap(`error record at ${ptr}+${n} lies outside memory`);
    this.ensureIO(take).set(mem.subarray(ptr, ptr + take));
    return take;
  }

  private fail(e: unknown): number {
    if (e instanceof TimeLimit) {
      this.failure = 'time limit';
      return FAIL_TIME;
    }
    if (e instanceof ProcExit) {
      this.failure = e.message;
      this.exitCode = e.code;
      return FAIL_EXIT;
    }
    if (e instanceof HostTrap) this.failure = e.message;
    else if (e instanceof WebAssembly.RuntimeError) {
      const fn = trapFunction(e);
      this.failure = `wasm error: ${e.message}${fn ? ` in ${fn}` : ''}`;
    }
    else if (e instanceof Error) this.failure = `${e.name}: ${e.message}`;
    else this.failure = String(e);
    return FAIL_TRAP;
  }

  private view(): DataView {
    return new DataView(this.ex.memory.buffer);
  }

  private imports(): WebAssembly.Imports {
    const go = this.go;
    const sqlsync = {
      run: (reqPtr: number, reqLen: number, outPtr: number, outCap: number): number => {
        if (!this.active) throw new HostTrap('sqlsync.run called outside a mutation or migration');
        reqPtr >>>= 0;
        reqLen >>>= 0;
        outPtr >>>= 0;
        outCap >>>= 0;
        const mem = new Uint8Array(this.ex.memory.buffer);
        if (reqPtr + reqLen > mem.length) throw new HostTrap(`sqlsync.run: request at ${reqPtr}+${reqLen} lies outside memory`);
        const io = this.io;
        this.ensureIO(reqLen).set(mem.subarray(reqPtr, reqPtr + reqLen));
        const n = go.run(reqLen, outCap, this.io !== io ? this.io : undefined);
        return this.respond(n, 'run', outPtr, outCap);
      },
      result: (outPtr: number, outCap: number): number => {
        if (!this.active) throw new HostTrap('sqlsync.result called outside a mutation or migration');
        return this.respond(go.result(outCap >>> 0), 'result', outPtr >>> 0, outCap >>> 0);
      },
    };
    const zeroPair = (a: number, b: number): number => {
      const dv = this.view();
      dv.setUint32(a >>> 0, 0, true);
      dv.setUint32(b >>> 0, 0, true);
      return ESUCCESS;
    };
    const stdio = (fd: number) => fd >= 0 && fd <= 2;
    const wasi = {
      args_get: (): number => ESUCCESS,
      args_sizes_get: zeroPair,
      environ_get: (): number => ESUCCESS,
      environ_sizes_get: zeroPair,
      clock_res_get: (id: number, resPtr: number): number => {
        if (id !== 0 && id !== 1) return EINVAL;
        this.view().setBigUint64(resPtr >>> 0, 1n, true);
        return ESUCCESS;
      },
      clock_time_get: (id: number, _precision: bigint, timePtr: number): number => {
        let t: bigint;
        if (id === 0) {
          t = BigInt(this.opts.walltime) * 1_000_000_000n;
        } else if (id === 1) {
          this.monotonic += this.opts.monotonicStep;
          t = BigInt(this.monotonic);
        } else {
          return EINVAL;
        }
        this.view().setBigUint64(timePtr >>> 0, t, true);
        return ESUCCESS;
      },
      random_get: (ptr: number, len: number): number => {
        ptr >>>= 0;
        len >>>= 0;
        const end = this.randomAt + len;
        if (end > this.random.length) this.random = go.random(end);
        new Uint8Array(this.ex.memory.buffer, ptr, len).set(this.random.subarray(this.randomAt, end));
        this.randomAt = end;
        return ESUCCESS;
      },
      fd_write: (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number => {
        if (fd !== 1 && fd !== 2) return EBADF;
        const dv = this.view();
        const mem = new Uint8Array(this.ex.memory.buffer);
        let n = 0;
        for (let i = 0; i < iovsLen >>> 0; i++) {
          const ptr = dv.getUint32((iovs >>> 0) + 8 * i, true);
          const len = dv.getUint32((iovs >>> 0) + 8 * i + 4, true);
          if (ptr + len > mem.length) return EFAULT;
          this.output.write(fd - 1, mem.subarray(ptr, ptr + len));
          n += len;
        }
        dv.setUint32(nwrittenPtr >>> 0, n, true);
        return ESUCCESS;
      },
      fd_close: (fd: number): number => (stdio(fd) ? ESUCCESS : EBADF),
      fd_seek: (fd: number): number => (stdio(fd) ? ESPIPE : EBADF),
      fd_fdstat_get: (fd: number, ptr: number): number => {
        if (!stdio(fd)) return EBADF;
        const dv = this.view();
        ptr >>>= 0;
        dv.setUint8(ptr, 2); // filetype: character device
        dv.setUint16(ptr + 2, 0, true); // flags
        dv.setBigUint64(ptr + 8, fd === 0 ? 0x2n : 0x40n, true); // rights: fd_read or fd_write
        dv.setBigUint64(ptr + 16, 0n, true);
        return ESUCCESS;
      },
      fd_fdstat_set_flags: (fd: number): number => (stdio(fd) ? ESUCCESS : EBADF),
      fd_prestat_get: (): number => EBADF, // no preopened directories
      fd_prestat_dir_name: (): number => EBADF,
      poll_oneoff: (inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number => {
        // Every subscription fires at once: sleeping returns immediately.
        nsubs >>>= 0;
        if (nsubs === 0) return EINVAL;
        const dv = this.view();
        for (let i = 0; i < nsubs; i++) {
          const sub = (inPtr >>> 0) + 48 * i;
          const ev = (outPtr >>> 0) + 32 * i;
          dv.setBigUint64(ev, dv.getBigUint64(sub, true), true); // userdata
          dv.setUint16(ev + 8, ESUCCESS, true); // error
          dv.setUint8(ev + 10, dv.getUint8(sub + 8)); // type
          for (let j = 11; j < 32; j++) dv.setUint8(ev + j, 0);
        }
        dv.setUint32(neventsPtr >>> 0, nsubs, true);
        return ESUCCESS;
      },
      proc_exit: (code: number): never => {
        throw new ProcExit(code >>> 0);
      },
      sched_yield: (): number => ESUCCESS,
    };
    return { sqlsync, wasi_snapshot_preview1: wasi };
  }
}

/** The Cache API cache that rewritten mutator modules are kept in, across page loads. */
const codeCacheName = 'sqlsync-mutator-code';

/** The Cache API key of the rewritten module key (a name, not a URL anything serves). */
const codeUrl = (key: string) => `https://sqlsync.invalid/code/${encodeURIComponent(key)}.wasm`;

async function codeCache(): Promise<Cache | undefined> {
  try {
    return typeof caches !== 'undefined' ? await caches.open(codeCacheName) : undefined;
  } catch {
    return undefined; // storage disabled, or an insecure context
  }
}

/** Where coordinators serve modules, by hash: `<base>/v1/mutators/<hash>.wasm`. */
const codeSources = new Map<string, string>();

/**
 * The limits and rewriter the Go half asks for a module's browser build
 * with (jsmutator's default memory limit, interrupt.Version): the key
 * prefetched as soon as a module's source is known. A Go test
 * (shared/mutatorhost, TestBrowserPrefetchKey) keeps them in step.
 */
export const DEFAULT_MEMORY_PAGES = 1024;
export const REWRITER_VERSION = 2;

/** Browser builds being fetched and compiled ahead of the Go half's ask, by key. */
const prefetched = new Map<string, Promise<WebAssembly.Module | undefined>>();

/**
 * registerCodeSource notes that url (`<base>/v1/mutators/<hash>.wasm`)
 * serves the module of hash, and starts fetching and compiling its
 * browser build with the default limits at once: it is told while the Go
 * runtime is still loading, so the Go half's loadCode finds it ready.
 */
function registerCodeSource(hash: string, url: string): void {
  codeSources.set(hash, url);
  const key = `${hash}-p${DEFAULT_MEMORY_PAGES}-v${REWRITER_VERSION}`;
  if (prefetched.has(key)) return;
  const p = fromSource(key);
  p.catch(() => {});
  prefetched.set(key, p);
}

/** fromSource compiles the browser build for key served beside its module, if a coordinator serves it. */
async function fromSource(key: string): Promise<WebAssembly.Module | undefined> {
  const hash = key.split('-')[0];
  const src = codeSources.get(hash);
  if (!src?.endsWith(`/${hash}.wasm`) || typeof fetch !== 'function') return undefined;
  try {
    const resp = await fetch(`${src.slice(0, -(hash.length + 5))}${key}.wasm`);
    if (resp.ok) return await WebAssembly.compileStreaming(resp);
  } catch {
    // Offline with nothing in the HTTP cache, or a coordinator that
    // serves no browser builds: the Cache API's copy, or a rewrite.
  }
  return undefined;
}

/**
 * loadCode compiles the rewritten module for key (`<hash>-p<pages>-v<version>`):
 * first the browser build its coordinator serves beside the module
 * (`<base>/v1/mutators/<key>.wasm`, immutable), streamed from a real fetch
 * so that the HTTP cache keeps its bytes and V8 its compiled code (already
 * under way when registerCodeSource prefetched it); else the copy kept in
 * the Cache API (V8 keeps no code for a Response without a URL, so it
 * compiles again). Resolves with undefined when neither is there (the Go
 * half then rewrites and compiles the module itself).
 */
async function loadCode(key: string): Promise<WebAssembly.Module | undefined> {
  const served = await (prefetched.get(key) ?? fromSource(key));
  if (served) return served;
  prefetched.delete(key); // a failed prefetch is not kept: a later open tries again
  const cache = await codeCache();
  const resp = await cache?.match(codeUrl(key)).catch(() => undefined);
  if (!resp) return undefined;
  try {
    return await WebAssembly.compileStreaming(resp);
  } catch {
    await cache?.delete(codeUrl(key)).catch(() => false); // damaged: rewrite again
    return undefined;
  }
}

/** storeCode keeps a rewritten module under key for the next page load. */
async function storeCode(key: string, code: Uint8Array): Promise<void> {
  const cache = await codeCache();
  await cache
    ?.put(codeUrl(key), new Response(code.slice() as unknown as BodyInit, { headers: { 'content-type': 'application/wasm' } }))
    .catch(() => {});
}

/** The API the Go half finds at globalThis.sqlsyncMutatorHost. */
export const mutatorHost = {
  instantiate: (module: WebAssembly.Module, go: GoHooks, opts: InstanceOptions) => GuestInstance.create(module, go, opts),
  loadCode,
  storeCode,
  registerCodeSource,
  failTrap: FAIL_TRAP,
  failExit: FAIL_EXIT,
  failTime: FAIL_TIME,
};

/** Installs the host as globalThis.sqlsyncMutatorHost, where wasm/jsmutator looks for it. */
export function installMutatorHost(): void {
  (globalThis as unknown as { sqlsyncMutatorHost: typeof mutatorHost }).sqlsyncMutatorHost = mutatorHost;
}

/**
 * The guest function a trap happened in, from V8's stack: the innermost
 * WebAssembly frame the module's name section names, past the frames of
 * AssemblyScript's library (~lib/: its runtime, the SDK's abort handler),
 * or '' if none (as natively, in shared/wasmhost).
 */
function trapFunction(e: Error): string {
  for (const line of (e.stack ?? '').split('\n')) {
    if (!line.includes('wasm://wasm/')) continue;
    const m = /^\s*at (.+?) \(wasm:\/\/wasm\//.exec(line);
    if (!m) return ''; // an unnamed frame
    if (!m[1].startsWith('~lib/')) return m[1];
  }
  return '';
}
