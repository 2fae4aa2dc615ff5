import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load';

const base = 'identity:\n  devProvider: { enabled: true }\n';
const problems = (text: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig(text, 'test.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected the config to be refused');
};

describe('config', () => {
  it('fills defaults for a minimal file', () => {
    const cfg = parseConfig(base, '/etc/sallyport/x.yaml', {});
    expect(cfg.server).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(cfg.database.dataDir).toBe('/etc/sallyport/.sallyport/data');
    expect(cfg.identity.algorithms).not.toContain('HS256');
    expect(cfg.targets).toEqual([]);
  });

  it('names file, line and path of a wrong type', () => {
    const err = problems(
      `${base}targets:\n  - id: a\n    kind: postgres\n    host: h\n    user: u\n    database: d\n  - id: b\n    kind: postgres\n    host: h\n    port: "5432"\n    user: u\n    database: d\n`,
    );
    expect(err.message).toContain('invalid configuration in test.yaml');
    expect(err.problems).toEqual([
      expect.objectContaining({
        path: 'targets[1].port',
        line: 12,
        message: 'expected number, received string',
      }),
    ]);
    expect(err.message).toContain('line 12: targets[1].port: expected number, received string');
  });

  it('reports YAML syntax errors with the line', () => {
    const err = problems('server:\n  port: [8080\nidentity: {}\n');
    expect(err.problems[0]?.message).toMatch(/^YAML syntax: /);
    expect(err.problems[0]?.line).toBeGreaterThan(1);
  });

  it('reports unknown keys, bad ids and a non-mapping document', () => {
    expect(problems(`${base}servr: {}\n`).message).toContain('unknown key(s): servr');
    expect(
      problems(`${base}targets:\n  - { id: "Prod DB", kind: postgres, host: h, user: u, database: d }\n`)
        .problems[0]?.path,
    ).toBe('targets[0].id');
    expect(problems('- a\n- b\n').message).toContain('mapping');
  });

  it('refuses contradictions', () => {
    const cases: Array<[string, string]> = [
      [
        `identity:\n  issuer: https://idp.example.com\n  devProvider: { enabled: true }\n`,
        'identity.issuer: set either',
      ],
      [`identity: {}\n`, 'identity.issuer: required'],
      [`${base}server: { host: 0.0.0.0 }\n`, 'server.host: plain HTTP is only served on loopback'],
      [
        `${base}server: { host: 0.0.0.0, tls: { cert: c, key: k }, behindTlsProxy: true }\n`,
        'server.behindTlsProxy',
      ],
      [`identity:\n  devProvider: { enabled: true, host: 0.0.0.0 }\n`, 'identity.devProvider.host'],
      [
        `${base}targets:\n  - { id: a, kind: postgres, host: h, user: u, database: d }\n  - { id: a, kind: postgres, host: h, user: u, database: d }\n`,
        'targets[1].id: duplicate target id "a" (also targets[0])',
      ],
      [
        `${base}targets:\n  - { id: a, kind: postgres, host: h, user: u, database: d, credential: { privateKey: k } }\n`,
        'postgres targets take a password',
      ],
      [
        `${base}targets:\n  - { id: a, kind: ssh, host: h, user: u, hostKey: "ssh-ed25519 AAAA", credential: { password: p, privateKey: k } }\n`,
        'give only one of',
      ],
      [
        `${base}targets:\n  - { id: a, kind: ssh, host: h, user: u, hostKey: "not a key" }\n`,
        'targets[0].hostKey',
      ],
      [
        `${base}demo: { postgres: true }\ntargets:\n  - { id: demo-postgres, kind: postgres, host: h, user: u, database: d }\n`,
        'reserved',
      ],
    ];
    for (const [text, expected] of cases) expect(problems(text).message, text).toContain(expected);
  });

  it('takes secrets from the environment', () => {
    const cfg = parseConfig(
      `${base}targets:\n  - { id: prod-db, kind: postgres, host: h, user: u, database: d }\n`,
      'x.yaml',
      {
        SALLYPORT_TARGET_PROD_DB_PASSWORD: 'from-env',
        SALLYPORT_DATABASE_URL: 'postgres://u:p@db/sallyport',
      },
    );
    expect(cfg.targets[0]?.credential).toEqual({ password: 'from-env' });
    expect(cfg.database.url).toBe('postgres://u:p@db/sallyport');
    expect(problems(base, { SALLYPORT_DATABASE_URL: 'mysql://x' }).message).toContain('database.url');
  });
});
