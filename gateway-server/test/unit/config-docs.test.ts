import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderConfigDocs } from '../../src/config/docs';

describe('configuration reference', () => {
  it('docs/config.md is generated from the schema and up to date (npm run docs:config)', () => {
    const committed = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8');
    const generated = renderConfigDocs();
    expect(generated).toContain('| `targets[].hostKey` | string | **required** |');
    expect(committed).toBe(generated);
  });
});
