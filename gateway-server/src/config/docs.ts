import { z } from 'zod';
import { GatewayConfig } from './schema';

/**
 * Renders the configuration reference (docs/config.md) from the zod schema, so
 * the docs cannot drift from what the gateway accepts. Run: npm run docs:config
 */
type Json = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Json>;
  required?: string[];
  items?: Json;
  anyOf?: Json[];
  oneOf?: Json[];
  additionalProperties?: Json | boolean;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  format?: string;
};

const rows: string[] = [];

function typeOf(s: Json): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((e) => `\`${String(e)}\``).join(' \\| ');
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (
    s.type === 'object' &&
    s.additionalProperties &&
    typeof s.additionalProperties === 'object' &&
    !s.properties
  ) {
    return `map of ${typeOf(s.additionalProperties)}`;
  }
  let t = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
  if (s.format) t += ` (${s.format})`;
  if (s.minimum !== undefined && s.maximum !== undefined) t += ` ${s.minimum}–${s.maximum}`;
  return t;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function walk(s: Json, path: string, required: boolean) {
  const isLeafy =
    !s.properties &&
    !(s.type === 'array' && s.items?.properties) &&
    !s.oneOf &&
    !s.anyOf?.some((a) => a.properties);
  if (path) {
    const def = s.default !== undefined ? `\`${JSON.stringify(s.default)}\`` : required ? '**required**' : '';
    rows.push(
      `| \`${path}\` | ${isLeafy ? typeOf(s) : s.type === 'array' ? 'list' : 'section'} | ${def} | ${cell(s.description ?? '')} |`,
    );
  }
  walkChildren(s, path);
}

function walkChildren(s: Json, path: string) {
  if (s.properties) {
    for (const [k, v] of Object.entries(s.properties))
      walk(v, path ? `${path}.${k}` : k, s.required?.includes(k) ?? false);
  }
  if (s.type === 'array' && s.items) {
    const alts = s.items.oneOf ?? s.items.anyOf;
    for (const alt of alts ?? [s.items]) {
      const kind = alt.properties?.kind?.const;
      if (kind !== undefined) rows.push(`| \`${path}[]\` with \`kind: ${String(kind)}\` | | | |`);
      walkChildren(alt, `${path}[]`);
    }
  }
}

export function renderConfigDocs(): string {
  rows.length = 0;
  const schema = z.toJSONSchema(GatewayConfig, { io: 'input', unrepresentable: 'any' }) as Json;
  walk(schema, '', true);
  return [
    '# Configuration reference',
    '',
    'Generated from `gateway-server/src/config/schema.ts` by `npm run docs:config`; a unit test fails when this file is stale.',
    '',
    'The gateway reads one YAML file: `sallyport gateway --config sallyport.yaml`. Validate one without starting anything: `sallyport config check --config sallyport.yaml`. A bad file stops start-up with the file, the line, the path and the problem, for example `line 12: targets[1].port: expected number, received string`. Relative paths are relative to the config file.',
    '',
    '## Environment',
    '',
    '| variable | overrides |',
    '| --- | --- |',
    '| `SALLYPORT_MASTER_KEY` | the master key (32 bytes, base64 or hex); takes precedence over `secrets.masterKeyFile` |',
    '| `SALLYPORT_DATABASE_URL` | `database.url` |',
    '| `SALLYPORT_LOG_LEVEL` | `logging.level` |',
    '| `SALLYPORT_TARGET_<ID>_PASSWORD` | the password of target `<ID>` (upper-cased, `-` as `_`) |',
    '| `SALLYPORT_TARGET_<ID>_PRIVATE_KEY` | the private key of target `<ID>` |',
    "| `SALLYPORT_CONSOLE_CLIENT_SECRET` | the web console's OIDC client secret |",
    '',
    '## Keys',
    '',
    '| key | type | default | description |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(renderConfigDocs());
