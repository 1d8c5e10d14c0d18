#!/usr/bin/env node
// sqlsync-mutator builds a mutator written in TypeScript syntax
// (AssemblyScript, with @sqlsync-go/mutator) into the WebAssembly module
// that `sqlsync serve --mutator` loads and the browser runs.
//
//   npx sqlsync-mutator build src/mutator.ts [-o mutator.wasm] [--source-map] [--no-names] [--debug-build]

import { parseArgs } from "node:util";
import { BuildError, build, readSDKVersion } from "./build.mjs";

const usage = `usage: sqlsync-mutator build <mutator.ts> [-o <out.wasm>] [--source-map] [--no-names] [--no-optimize]

Compiles an AssemblyScript mutator into a sqlsync mutator module.
  -o, --out        the module to write (default: mutator.wasm)
  --source-map     also write <out>.map
  --no-names       drop function names (smaller; traps then name no function)
  --no-optimize    skip Binaryen's optimizer (faster builds while developing)`;

async function main(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: "string", short: "o" },
        "source-map": { type: "boolean" },
        "no-names": { type: "boolean" },
        "no-optimize": { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (err) {
    console.error(`sqlsync-mutator: ${err.message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.version) {
    console.log(await readSDKVersion());
    return 0;
  }
  const [command, entry, ...rest] = positionals;
  if (command !== "build" || !entry || rest.length > 0) {
    console.error(`sqlsync-mutator: ${command ? `unknown command or arguments: ${positionals.join(" ")}` : "no command"}\n\n${usage}`);
    return 2;
  }
  const out = values.out ?? "mutator.wasm";
  try {
    const { wasm } = await build(entry, {
      out,
      sourceMap: values["source-map"] ?? false,
      names: !values["no-names"],
      optimize: !values["no-optimize"],
    });
    console.log(`sqlsync-mutator: wrote ${out} (${wasm.length} bytes)`);
    return 0;
  } catch (err) {
    if (err instanceof BuildError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
