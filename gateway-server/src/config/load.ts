import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PemCertificates } from '@sallyport/protocol';
import { type Document, isMap, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { webhookSecretEnv } from '../notify/webhooks';
import { GatewayConfig } from './schema';

/** One problem in a config file, located as precisely as the file allows. */
export interface ConfigProblem {
  path: string; // e.g. targets[2].port
  message: string;
  line?: number;
  column?: number;
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `invalid configuration in ${file}:\n` +
        problems
          .map((p) => `  ${p.line ? `line ${p.line}: ` : ''}${p.path ? `${p.path}: ` : ''}${p.message}`)
          .join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/** `['targets', 2, 'port']` → `targets[2].port` */
export function formatPath(segments: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out ? `.${String(s)}` : String(s);
  }
  return out;
}

const envKey = (id: string) => id.toUpperCase().replace(/-/g, '_');

/**
 * Secrets may come from the environment so that config files can be committed
 * without them. Applied to the raw document before validation, so a bad value
 * is reported like any other.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const section = (name: string): Record<string, unknown> => {
    if (typeof raw[name] !== 'object' || raw[name] === null) raw[name] = {};
    return raw[name] as Record<string, unknown>;
  };
  if (env.SALLYPORT_DATABASE_URL) section('database').url = env.SALLYPORT_DATABASE_URL;
  if (env.SALLYPORT_LOG_LEVEL) section('logging').level = env.SALLYPORT_LOG_LEVEL;
  if (Array.isArray(raw.targets)) {
    for (const t of raw.targets as Array<Record<string, unknown>>) {
      if (!t || typeof t !== 'object' || typeof t.id !== 'string') continue;
      const password = env[`SALLYPORT_TARGET_${envKey(t.id)}_PASSWORD`];
      const privateKey = env[`SALLYPORT_TARGET_${envKey(t.id)}_PRIVATE_KEY`];
      if (password === undefined && privateKey === undefined) continue;
      // Keep what the file says (a passphrase, say) and let the environment supply the secret.
      // Both variables set is reported by the schema as "give only one of".
      const fromFile = (t.credential && typeof t.credential === 'object' ? t.credential : {}) as Record<
        string,
        unknown
      >;
      const { password: _p, privateKey: _k, privateKeyFile: _f, ...rest } = fromFile;
      t.credential = {
        ...rest,
        ...(password !== undefined ? { password } : {}),
        ...(privateKey !== undefined ? { privateKey } : {}),
      };
    }
  }
  const notify = raw.notify as Record<string, unknown> | undefined;
  if (notify && typeof notify === 'object' && Array.isArray(notify.webhooks)) {
    for (const w of notify.webhooks as Array<Record<string, unknown>>) {
      if (!w || typeof w !== 'object' || typeof w.name !== 'string') continue;
      const secret = env[webhookSecretEnv(w.name)];
      if (secret !== undefined) w.secret = secret;
    }
  }
}

function locate(doc: Document, lines: LineCounter, segments: ReadonlyArray<PropertyKey>) {
  // Walk down as far as the document goes: a missing key is reported at its parent.
  for (let n = segments.length; n >= 0; n--) {
    const node = doc.getIn(segments.slice(0, n) as Array<string | number>, true) as
      | { range?: [number, number, number] }
      | undefined;
    if (node && typeof node === 'object' && node.range) {
      const pos = lines.linePos(node.range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

export function problemsFromZod(error: z.ZodError, doc?: Document, lines?: LineCounter): ConfigProblem[] {
  return error.issues.map((issue) => {
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key(s): ${issue.keys.join(', ')}`;
    message = message.replace(/^Invalid input: /, '');
    return {
      path: formatPath(issue.path),
      message,
      ...(doc && lines ? locate(doc, lines, issue.path) : {}),
    };
  });
}

/** Parses and validates config text. Throws ConfigError naming the file, the path and the problem. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: '',
        message: `YAML syntax: ${e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
        line: e.linePos?.[0].line,
        column: e.linePos?.[0].col,
      })),
    );
  }
  const raw = doc.contents === null ? {} : doc.toJS();
  if (!isMap(doc.contents) && doc.contents !== null) {
    throw new ConfigError(file, [
      { path: '', message: 'the file must hold a mapping (key: value) at the top level' },
    ]);
  }
  applyEnvOverrides(raw, env);
  const result = GatewayConfig.safeParse(raw);
  if (!result.success) throw new ConfigError(file, problemsFromZod(result.error, doc, lines));
  const resolved = resolvePaths(result.data, path.dirname(path.resolve(file)));
  const problems: ConfigProblem[] = [];
  const targets = resolved.targets.map((t, i) => {
    if (t.kind !== 'postgres' || t.tlsCaFile === undefined) return t;
    const { tlsCaFile, ...rest } = t;
    const where = { path: `targets[${i}].tlsCaFile`, ...locate(doc, lines, ['targets', i, 'tlsCaFile']) };
    const read = readTlsCaFile(tlsCaFile);
    if ('problem' in read) {
      problems.push({ ...where, message: read.problem });
      return t;
    }
    const pem = read.pem;
    return { ...rest, tlsCa: pem };
  });
  if (problems.length > 0) throw new ConfigError(file, problems);
  return { ...resolved, targets };
}

/**
 * Reads a target's CA bundle file and checks that it holds PEM certificates and nothing else. The
 * problem names the file, never its contents (a private key put there by mistake stays unprinted).
 */
export function readTlsCaFile(file: string): { pem: string } | { problem: string } {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: `${file}: ${code === 'ENOENT' ? 'file not found' : (err as Error).message}` };
  }
  const checked = PemCertificates.safeParse(pem);
  if (!checked.success) return { problem: `${file}: ${checked.error.issues[0]?.message ?? 'not PEM'}` };
  return { pem };
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(file, [{ path: '', message: reason }]);
  }
  return parseConfig(text, file, env);
}

/** Relative paths in the config are relative to the config file, not the working directory. */
function resolvePaths(cfg: GatewayConfig, baseDir: string): GatewayConfig {
  const abs = (p: string) => (path.isAbsolute(p) ? p : path.resolve(baseDir, p));
  return {
    ...cfg,
    database: { ...cfg.database, dataDir: abs(cfg.database.dataDir) },
    recording: { ...cfg.recording, dir: abs(cfg.recording.dir) },
    secrets: cfg.secrets.masterKeyFile ? { masterKeyFile: abs(cfg.secrets.masterKeyFile) } : cfg.secrets,
    server: cfg.server.tls
      ? {
          ...cfg.server,
          tls: {
            cert: abs(cfg.server.tls.cert),
            key: abs(cfg.server.tls.key),
            ...(cfg.server.tls.ca ? { ca: abs(cfg.server.tls.ca) } : {}),
          },
        }
      : cfg.server,
    targets: cfg.targets.map((t) => {
      const withKey = t.credential?.privateKeyFile
        ? { ...t, credential: { ...t.credential, privateKeyFile: abs(t.credential.privateKeyFile) } }
        : t;
      return withKey.kind === 'postgres' && withKey.tlsCaFile
        ? { ...withKey, tlsCaFile: abs(withKey.tlsCaFile) }
        : withKey;
    }),
  };
}
