import { defineConfig } from 'vite';

export default defineConfig({
  // JSX through esbuild (no React plugin needed for a build).
  esbuild: { jsx: 'automatic' },
  // The package finds its worker and wasm bundle with import.meta.url, so
  // Vite's dev server must not pre-bundle it (the package's README); the
  // production build needs nothing.
  optimizeDeps: { exclude: ['@sqlsync-go/client'] },
  resolve: { dedupe: ['react', 'react-dom'] },
  build: { target: 'es2022' },
  // `npm run dev` serves the app and forwards sync to the coordinator of
  // `make run` (or SQLSYNC_URL).
  server: {
    proxy: { '/v1/sync': { target: process.env.SQLSYNC_URL ?? 'http://127.0.0.1:8080', ws: true } },
  },
});
