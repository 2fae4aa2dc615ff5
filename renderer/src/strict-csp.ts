// Runs before anything else (first import of main.tsx). The console's CSP has no
// 'unsafe-eval', and zod's JIT probes `new Function('')` when schemas are built:
// the throw is caught, but Chromium still reports a CSP violation. Zod reads its
// global config from this well-known slot, so jitless mode is set before zod loads.
const slot = globalThis as { __zod_globalConfig?: { jitless?: boolean } };
slot.__zod_globalConfig = { ...slot.__zod_globalConfig, jitless: true };
