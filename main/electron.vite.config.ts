// Bundles the Electron main process and the preload. There is no renderer entry: the
// window shows the console the gateway serves (renderer/dist, built by
// `npm run build:console` and served by `sallyport gateway --console`), so the app and
// the web console are the same build.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'electron-vite';

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  main: {
    build: {
      // Everything (the protocol package is TypeScript source, openid-client, zod) is
      // bundled: the packaged app needs no node_modules and loads no native addon.
      externalizeDeps: false,
      lib: { entry: src('electron-main/index.ts'), formats: ['es'], fileName: () => 'index.js' },
      sourcemap: true,
    },
  },
  preload: {
    build: {
      // A sandboxed preload must be one CommonJS file that requires nothing but 'electron'.
      externalizeDeps: false,
      lib: { entry: src('preload/index.ts'), formats: ['cjs'], fileName: () => 'index.cjs' },
      sourcemap: true,
    },
  },
});
