import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The renderer is built once and served two ways: by the gateway as the web console
// (renderer/dist at `/`) and inside the Electron window. It never imports Node or Electron.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Everything is loaded from the gateway's own origin under a strict CSP: no inline assets.
    assetsInlineLimit: 0,
    target: 'es2022',
    // Monaco (loaded with the first SQL tab, never on start-up) is one ~3 MB chunk by nature.
    chunkSizeWarningLimit: 3500,
  },
});
