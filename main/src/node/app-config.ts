/**
 * Where the desktop app connects and in which mode, from (in order) the command
 * line, the environment and `<userData>/config.json`. Pure, so it is tested under
 * Node; the Electron layer passes `process.argv`, `process.env` and the file text.
 *
 *   --gateway=<url>        SALLYPORT_GATEWAY        { "gateway": "<url>" }
 *   --allow-loopback-http  SALLYPORT_ALLOW_LOOPBACK_HTTP=1   (development only)
 */
import { z } from 'zod';

export interface AppConfig {
  gatewayUrl: string;
  allowLoopbackHttp: boolean;
  /** Where the gateway URL came from, for the error message when it is unusable. */
  source: 'argv' | 'env' | 'file' | 'default';
}

const ConfigFile = z.object({ gateway: z.string().url().optional() }).passthrough();

export const DEFAULT_GATEWAY = 'http://127.0.0.1:8080';

export function resolveAppConfig(input: {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  fileText?: string;
}): AppConfig {
  const allowLoopbackHttp =
    input.argv.includes('--allow-loopback-http') || input.env.SALLYPORT_ALLOW_LOOPBACK_HTTP === '1';
  const arg = input.argv.find((a) => a.startsWith('--gateway='))?.slice('--gateway='.length);
  if (arg) return { gatewayUrl: arg, allowLoopbackHttp, source: 'argv' };
  if (input.env.SALLYPORT_GATEWAY)
    return { gatewayUrl: input.env.SALLYPORT_GATEWAY, allowLoopbackHttp, source: 'env' };
  if (input.fileText) {
    let json: unknown;
    try {
      json = JSON.parse(input.fileText);
    } catch {
      throw new Error('config.json in the app data folder is not valid JSON');
    }
    const parsed = ConfigFile.safeParse(json);
    if (!parsed.success) throw new Error('config.json: "gateway" must be a URL');
    if (parsed.data.gateway) return { gatewayUrl: parsed.data.gateway, allowLoopbackHttp, source: 'file' };
  }
  return { gatewayUrl: DEFAULT_GATEWAY, allowLoopbackHttp, source: 'default' };
}
