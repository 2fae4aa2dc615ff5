#!/usr/bin/env node
// The gateway and its CLI are TypeScript run through tsx (esbuild transform at
// load): no build step between editing and running. See README "Why tsx".
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
