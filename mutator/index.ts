// The AssemblyScript compiler resolves a package import to the package's
// index.ts; the SDK lives in assembly/.
export * from "./assembly/index";
