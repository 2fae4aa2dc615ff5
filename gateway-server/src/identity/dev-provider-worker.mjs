// Runs the development identity provider (dev-provider.ts) on a thread of its own; see
// dev-provider-thread.ts for why. Plain JS, so the parent needs no TypeScript loader for the
// worker; the provider's TypeScript is loaded here through tsx's API.
import { parentPort, workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const port = parentPort;
let running;
try {
  const { startDevProvider } = await tsImport('./dev-provider.ts', import.meta.url);
  running = await startDevProvider(workerData);
  port.postMessage({
    op: 'started',
    issuer: running.issuer,
    port: running.port,
    audience: running.audience,
    resourceIndicator: running.resourceIndicator,
  });
} catch (err) {
  port.postMessage({ op: 'failed', message: err instanceof Error ? err.message : String(err) });
  port.close();
}

port.on('message', async (m) => {
  if (m?.op !== 'stop' || !running) return;
  try {
    await running.stop();
  } finally {
    port.postMessage({ op: 'stopped' });
    port.close();
  }
});
