import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TargetInput } from '@sallyport/protocol';
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

  describe("a PostgreSQL target's CA (tlsCa, tlsCaFile)", () => {
    // A real certificate's shape; its bytes do not matter to the config.
    const pem = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ3\n-----END CERTIFICATE-----\n';
    const pgTarget = (extra: string) =>
      `${base}targets:\n  - { id: db, kind: postgres, host: h, user: u, database: d, ${extra} }\n`;

    it('reads tlsCaFile relative to the config file, and takes tlsCa inline', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sallyport-cfg-'));
      try {
        writeFileSync(path.join(dir, 'db-ca.pem'), pem);
        const cfg = parseConfig(
          pgTarget('tls: verify-full, tlsCaFile: db-ca.pem'),
          path.join(dir, 'x.yaml'),
          {},
        );
        expect(cfg.targets[0]).toMatchObject({ tls: 'verify-full', tlsCa: pem });
        expect(cfg.targets[0]).not.toHaveProperty('tlsCaFile');
        const inline = parseConfig(pgTarget(`tls: verify-full, tlsCa: ${JSON.stringify(pem)}`), 'x.yaml', {});
        expect(inline.targets[0]).toMatchObject({ tlsCa: pem });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses a missing or non-PEM file by its line, a CA without verify-full, and both at once', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sallyport-cfg-'));
      try {
        writeFileSync(
          path.join(dir, 'key.pem'),
          '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n',
        );
        const missing = problems(
          `${base}targets:\n  - id: db\n    kind: postgres\n    host: h\n    user: u\n    database: d\n    tls: verify-full\n    tlsCaFile: nowhere.pem\n`,
        );
        // problems() parses as test.yaml in the working directory: the path is resolved from there.
        expect(missing.problems).toEqual([
          expect.objectContaining({
            path: 'targets[0].tlsCaFile',
            line: 10,
            message: expect.stringMatching(/nowhere\.pem: file not found$/),
          }),
        ]);
        const notPem = (() => {
          try {
            parseConfig(pgTarget('tls: verify-full, tlsCaFile: key.pem'), path.join(dir, 'x.yaml'), {});
          } catch (err) {
            return err as ConfigError;
          }
          throw new Error('expected the config to be refused');
        })();
        expect(notPem.message).toContain('targets[0].tlsCaFile');
        expect(notPem.message).toContain(
          'PEM certificates (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----), nothing else',
        );
        // A private key pasted as the CA is refused without echoing it.
        expect(notPem.message).not.toContain('MIGH');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(problems(pgTarget(`tls: require, tlsCa: ${JSON.stringify(pem)}`)).message).toContain(
        'targets[0].tlsCa: tlsCa is only used with tls: verify-full (this target has tls: require',
      );
      expect(problems(pgTarget('tlsCaFile: ca.pem')).message).toContain(
        'targets[0].tlsCaFile: tlsCaFile is only used with tls: verify-full (this target has tls: disable',
      );
      expect(
        problems(pgTarget(`tls: verify-full, tlsCaFile: ca.pem, tlsCa: ${JSON.stringify(pem)}`)).message,
      ).toContain('give only one of tlsCa, tlsCaFile');
      expect(problems(pgTarget('tls: verify-full, tlsCa: "not a certificate"')).message).toContain(
        'targets[0].tlsCa: PEM certificates',
      );
    });

    it("is checked the same way in the admin API's target body", () => {
      const body = { id: 'db', kind: 'postgres', host: 'h', user: 'u', database: 'd' };
      expect(TargetInput.safeParse({ ...body, tls: 'verify-full', tlsCa: pem }).success).toBe(true);
      // A bundle with Windows line ends passes; anything beside the certificates does not.
      const bundle = pem.replace(/\n/g, '\r\n').repeat(25);
      expect(TargetInput.safeParse({ ...body, tls: 'verify-full', tlsCa: bundle }).success).toBe(true);
      for (const extra of ['# comment', '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----']) {
        expect(TargetInput.safeParse({ ...body, tls: 'verify-full', tlsCa: bundle + extra }).success).toBe(
          false,
        );
      }
      expect(
        TargetInput.safeParse({ ...body, tls: 'verify-full', tlsCa: 'x'.repeat(1_000_001) }).error?.issues,
      ).toEqual([expect.objectContaining({ message: 'at most 1 MB of PEM' })]);
      const wrong = TargetInput.safeParse({ ...body, tls: 'require', tlsCa: pem });
      expect(wrong.success).toBe(false);
      expect(wrong.error?.issues[0]).toMatchObject({
        path: ['tlsCa'],
        message: expect.stringContaining('only used with tls: verify-full'),
      });
    });
  });
});
