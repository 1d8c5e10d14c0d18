// Writes pre-compressed copies of the wasm bundle beside it: .gz (gzip -9)
// and .br (brotli, quality 11), with Node's own zlib.
import { readFileSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

for (const file of process.argv.slice(2)) {
  const data = readFileSync(file);
  writeFileSync(file + '.gz', gzipSync(data, { level: 9 }));
  writeFileSync(
    file + '.br',
    brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 11,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
        [constants.BROTLI_PARAM_LGWIN]: 24,
      },
    }),
  );
}
