#!/usr/bin/env node
// `npm start`: the product on its embedded defaults. Starts the gateway (PGlite store,
// development identity provider, demo PostgreSQL and sshd targets), then the desktop
// app if Electron's binary is installed, else prints the web console URL.
// Ctrl-C stops everything it started.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stateDir = path.join(root, '.sallyport');
const config = path.join(root, 'sallyport.dev.yaml');
const consoleDir = path.join(root, 'renderer', 'dist');
const logFile = path.join(stateDir, 'gateway.log');
const started = Date.now();

mkdirSync(stateDir, { recursive: true, mode: 0o700 });
const keyFile = path.join(stateDir, 'master.key');
if (!existsSync(keyFile)) {
  // A development key, kept beside the development store. Production keys come from a secret store.
  writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
}
if (!existsSync(path.join(consoleDir, 'index.html'))) {
  console.log('building the web console…');
  const r = spawnSync('npm', ['run', '-s', 'build:console'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const children = [];
let stopping = false;
const stop = (code = 0) => {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping…');
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }, 15_000);
  force.unref();
  Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r))))).then(
    () => process.exit(code),
  );
};
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

const log = createWriteStream(logFile, { flags: 'a' });
const gateway = spawn(
  process.execPath,
  [
    path.join(root, 'gateway-server/bin/sallyport.mjs'),
    'gateway',
    '--config',
    config,
    '--console',
    consoleDir,
  ],
  {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  },
);
children.push(gateway);
let url;
let buffered = '';
const onLine = (line) => {
  log.write(`${line}\n`);
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    if (/listening on|sallyport:/.test(line)) console.log(line);
    return;
  }
  if (entry.level >= 40) console.log(`[gateway ${entry.level >= 50 ? 'error' : 'warn'}] ${entry.msg}`);
  if (entry.msg === 'gateway ready') {
    url = entry.url;
    ready();
  }
};
for (const stream of [gateway.stdout, gateway.stderr]) {
  stream.setEncoding('utf8');
  stream.on('data', (d) => {
    buffered += d;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) onLine(l);
  });
}
gateway.on('exit', (code) => {
  if (!stopping) {
    console.error(`the gateway exited (code ${code}); its log: ${logFile}`);
    stop(code ?? 1);
  }
});

function electronBinary() {
  try {
    const dir = path.join(root, 'node_modules', 'electron');
    const rel = readFileSync(path.join(dir, 'path.txt'), 'utf8').trim();
    const bin = path.join(dir, 'dist', rel);
    return existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

function ready() {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`
Sallyport is running (ready in ${seconds} s).

  Web console     ${url}
  Sign in as      alice / alice-demo   (developer)
                  bob   / bob-demo     (approver)
                  carol / carol-demo   (admin)
  CLI             npm run -s sallyport -- login --gateway ${url} --client-id sallyport-ci --client-secret sallyport-ci-demo
                  npm run -s sallyport -- targets
  Gateway log     ${path.relative(root, logFile)}
`);
  const bin = electronBinary();
  const appEntry = path.join(root, 'main', 'out', 'main', 'index.js');
  if (bin && existsSync(appEntry)) {
    const app = spawn(bin, [path.join(root, 'main')], {
      stdio: 'inherit',
      // The development gateway and identity provider speak plain http on loopback; the app
      // refuses that unless told it is a development set-up.
      env: { ...process.env, SALLYPORT_GATEWAY: url, SALLYPORT_ALLOW_LOOPBACK_HTTP: '1' },
    });
    children.push(app);
    app.on('exit', () => stop(0));
    console.log('Desktop app started. Close it or press Ctrl-C to stop everything.');
  } else {
    console.log(
      bin
        ? 'The desktop app is not built (npm run build -w @sallyport/desktop); use the web console above.'
        : "Electron's binary is not installed (ELECTRON_SKIP_BINARY_DOWNLOAD), so the desktop app cannot start here: use the web console above.",
    );
    console.log('Press Ctrl-C to stop.');
  }
}
