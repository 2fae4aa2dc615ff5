// The packaging configuration cannot be exercised end to end here (electron-builder
// downloads the Electron zip for every target), so it is validated the way
// electron-builder itself does before building: its own schema, and the files it names.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');
const require = createRequire(import.meta.url);

interface BuilderConfig {
  appId: string;
  productName: string;
  directories: { app: string; buildResources: string; output: string };
  files: unknown[];
  protocols: Array<{ schemes: string[] }>;
  linux: { target: string[]; icon: string };
  mac: { target: string[]; icon: string };
  win: { target: string[]; icon: string };
  electronFuses: Record<string, boolean>;
}

function pngSize(file: string): { width: number; height: number } {
  const b = readFileSync(file);
  expect(b.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

describe('desktop packaging (build/electron-builder.yml)', () => {
  it('passes electron-builder 26 schema validation and targets AppImage, deb, dmg and nsis', async () => {
    const { getConfig, validateConfiguration } = require('app-builder-lib/out/util/config/config.js') as {
      getConfig(projectDir: string, configPath: string, fromOptions: null): Promise<BuilderConfig>;
      validateConfiguration(config: BuilderConfig, logger: unknown): Promise<void>;
    };
    const { DebugLogger } = require('builder-util') as { DebugLogger: new (enabled: boolean) => unknown };
    const config = await getConfig(root, path.join(root, 'build/electron-builder.yml'), null);
    await validateConfiguration(config, new DebugLogger(false));
    expect(config.appId).toBe('dev.sallyport.desktop');
    expect(config.productName).toBe('Sallyport');
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.mac.target).toEqual(['dmg']);
    expect(config.win.target).toEqual(['nsis']);
    expect(config.protocols[0]?.schemes).toEqual(['sallyport']);
    expect(config.directories.app).toBe('main');
    expect(config.electronFuses).toMatchObject({ runAsNode: false, onlyLoadAppFromAsar: true });
  }, 30_000);

  it('rejects a misspelt option (the validation is real)', async () => {
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config.js') as {
      validateConfiguration(config: unknown, logger: unknown): Promise<void>;
    };
    const { DebugLogger } = require('builder-util') as { DebugLogger: new (enabled: boolean) => unknown };
    await expect(
      validateConfiguration({ appId: 'x', protocolz: [] }, new DebugLogger(false)),
    ).rejects.toThrow(/protocolz/);
  });

  it('has the icons it names: a 512x512 PNG (and its SVG source) and the window/tray icon', () => {
    expect(pngSize(path.join(root, 'build/icons/icon.png'))).toEqual({ width: 512, height: 512 });
    expect(readFileSync(path.join(root, 'build/icons/icon.svg'), 'utf8')).toContain('<svg');
    expect(pngSize(path.join(root, 'main/resources/icon.png'))).toEqual({ width: 256, height: 256 });
  });

  it('the app entry and the scripts line up', () => {
    const desktop = JSON.parse(readFileSync(path.join(root, 'main/package.json'), 'utf8'));
    expect(desktop.main).toBe('./out/main/index.js');
    expect(desktop.scripts.build).toMatch(/^electron-vite build/);
    const rootPkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect(rootPkg.scripts.package).toBe(
      'npm run -s build -w @sallyport/desktop && electron-builder --config build/electron-builder.yml',
    );
  });
});
