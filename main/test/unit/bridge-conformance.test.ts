// The preload's bridge must satisfy the renderer's `Platform` interface
// (renderer/src/platform.ts), which another team owns. The two live in projects
// with different libs (DOM vs Node), so the check compiles a tiny program with the
// TypeScript compiler: if either side drifts, this fails with the compiler's message.
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');

function diagnosticsFor(source: string): string[] {
  const file = path.join(root, 'main/test/unit/__bridge-check__.ts');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    path.resolve(name) === file
      ? ts.createSourceFile(name, source, lang)
      : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || path.resolve(d.file.fileName) === file)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('the desktop bridge and the renderer platform interface', () => {
  it('DesktopBridge is assignable to the renderer Platform', () => {
    const problems = diagnosticsFor(`
      import type { Platform } from '../../../renderer/src/platform';
      import type { DesktopBridge } from '../../src/common/ipc-contract';
      declare const bridge: DesktopBridge;
      export const platform: Platform = bridge;
      export const kind: 'desktop' = bridge.kind;
    `);
    expect(problems).toEqual([]);
  }, 30_000);

  it('the check itself catches a mismatch (it is not vacuous)', () => {
    const problems = diagnosticsFor(`
      import type { Platform } from '../../../renderer/src/platform';
      declare const notABridge: { kind: 'desktop' };
      export const platform: Platform = notABridge;
    `);
    expect(problems.join('\n')).toMatch(/notifications/);
  }, 30_000);
});
