// build compiles an AssemblyScript mutator into a sqlsync mutator module:
// the app's file and the SDK's ABI exports as the two entries, the minimal
// runtime (the SDK collects garbage at the end of every call), the start
// function exported as _initialize (a WASI reactor), every abort routed to
// the SDK's handler (a message on stderr, then a trap) and, unless told
// otherwise, the function names kept so that traps name the function.
// It then checks the module's imports, naming the API that brought in one
// the host would refuse.

import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");

// What the host grants (docs/mutator-abi.md), and what brings in the
// imports it does not.
const granted = new Set([
  "sqlsync.run",
  "sqlsync.result",
  ...[
    "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_time_get", "clock_res_get",
    "random_get", "fd_write", "fd_close", "fd_seek", "fd_fdstat_get", "fd_fdstat_set_flags",
    "fd_prestat_get", "fd_prestat_dir_name", "poll_oneoff", "sched_yield", "proc_exit",
  ].map((f) => "wasi_snapshot_preview1." + f),
]);
const culprits = [
  [/^env\.seed$/, "Math.random: a mutator must give the same result on every client; derive values from the args"],
  [/^env\.Date\./, "Date: the clock differs between clients; pass the time in the args"],
  [/^env\.console\./, "console: use log() from @sqlsync-go/mutator, which writes to the host's log"],
  [/^env\.trace$/, "trace(): use log() from @sqlsync-go/mutator"],
  [/^env\.performance\./, "performance.now(): the clock differs between clients"],
  [/^env\.process\./, "process: a mutator has no process to look at"],
  [/^env\.abort$/, "abort: build with this command, which routes aborts to the SDK"],
];

/** BuildError is a failed build, its message what the user should read. */
export class BuildError extends Error {}

/**
 * build compiles entry (a path to the app's mutator) into a module and
 * returns { wasm, sourceMap, stderr }; with out, it writes out (and
 * out.map with sourceMap) too. options: optimize (default true), names
 * (keep function names, default true), sourceMap (default false).
 */
export async function build(entry, { out, optimize = true, names = true, sourceMap = false } = {}) {
  const outFile = out ? resolve(out) : resolve("mutator.wasm");
  const baseDir = dirname(resolve(entry));
  const args = [
    resolve(entry),
    resolve(sdkDir, "assembly/exports.ts"),
    "--outFile", outFile,
    "--runtime", "minimal",
    "--exportStart", "_initialize",
    "--use", "abort=~lib/@sqlsync-go/mutator/assembly/index/abortHandler",
    "--baseDir", baseDir,
  ];
  // The compiler finds packages in the node_modules folders above baseDir
  // (the app's, which holds this SDK); when this SDK is not among them
  // (a global install, a linked checkout), it is offered through --path.
  let linkDir;
  if (!findPackage(baseDir)) {
    linkDir = await mkdtemp(join(tmpdir(), "sqlsync-mutator-"));
    await mkdir(join(linkDir, "@sqlsync-go"));
    await symlink(sdkDir, join(linkDir, "@sqlsync-go", "mutator"), "dir");
    args.push("--path", linkDir);
  }
  if (optimize) args.push("-O3", "--converge");
  if (names) args.push("--debug");
  if (sourceMap) args.push("--sourceMap");
  const files = {};
  let stderr = "";
  let error;
  try {
    ({ error } = await asc.main(args, {
      stdout: { write: () => true },
      stderr: { write: (s) => ((stderr += s), true) },
      writeFile: (name, contents) => {
        files[resolve(baseDir, name)] = contents;
      },
    }));
  } finally {
    if (linkDir) await rm(linkDir, { recursive: true, force: true });
  }
  if (error) throw new BuildError(`sqlsync-mutator: ${entry} does not compile:\n${stderr || error.message}`);
  const wasm = files[outFile];
  if (!wasm) throw new BuildError(`sqlsync-mutator: the compiler wrote no module (${Object.keys(files).join(", ")})`);
  checkImports(wasm, entry);
  if (out) {
    await mkdir(dirname(outFile), { recursive: true });
    await writeFile(outFile, wasm);
    if (sourceMap && files[outFile + ".map"]) await writeFile(outFile + ".map", files[outFile + ".map"]);
  }
  return { wasm, sourceMap: files[outFile + ".map"], stderr };
}

/** findPackage reports whether @sqlsync-go/mutator is in a node_modules folder at or above dir. */
function findPackage(dir) {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, "node_modules", "@sqlsync-go", "mutator", "package.json"))) return true;
    if (dirname(d) === d) return false;
  }
}

/** checkImports refuses a module that imports what the host does not grant. */
function checkImports(wasm, entry) {
  const mod = new WebAssembly.Module(wasm);
  const bad = WebAssembly.Module.imports(mod)
    .map((i) => `${i.module}.${i.name}`)
    .filter((name) => !granted.has(name));
  if (bad.length === 0) return;
  const lines = bad.map((name) => {
    const why = culprits.find(([re]) => re.test(name));
    return `  ${name}${why ? `: ${why[1]}` : ""}`;
  });
  throw new BuildError(`sqlsync-mutator: ${entry} imports what a sqlsync host does not grant:\n${lines.join("\n")}`);
}

/** readSDKVersion returns this package's version. */
export async function readSDKVersion() {
  return JSON.parse(await readFile(resolve(sdkDir, "package.json"), "utf8")).version;
}
