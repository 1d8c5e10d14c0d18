import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The stock config of `npm create vite` (react-ts): nothing for sqlsync.
export default defineConfig({
  plugins: [react()],
});
