// `node --import ./register.mjs out/main/index.js`: resolves the bare specifier
// 'electron' to the fake in this folder, so the BUILT main-process bundle runs under
// plain Node. Only the Electron boundary is fake; everything else is the real bundle.
import { register } from 'node:module';

register(new URL('./hooks.mjs', import.meta.url));
