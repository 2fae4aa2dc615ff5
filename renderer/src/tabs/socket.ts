/**
 * WebSocket plumbing shared by the terminal and SQL tabs. The console is served by the gateway,
 * so its channels are same-origin: the browser sends the HttpOnly session cookie on the upgrade
 * and the gateway checks the Origin. No token ever reaches the page.
 */
export function socketUrl(path: string): string {
  const { protocol, host } = window.location;
  return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}${path}`;
}

const encoder = new TextEncoder();

/** Bytes → base64 (chunked: String.fromCharCode takes a bounded argument list). */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export const textToBase64 = (text: string): string => bytesToBase64(encoder.encode(text));

/** A string whose characters are bytes (xterm's `onBinary`) → base64. */
export const binaryStringToBase64 = (data: string): string => btoa(data);

export function base64ToBytes(data: string): Uint8Array {
  const binary = atob(data);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Close codes a browser reports when a socket dies without a closing handshake. */
export function describeSocketClose(code: number): string {
  if (code === 1006) return 'the connection to the gateway was lost';
  if (code === 1001) return 'the gateway is going away';
  return `the connection closed (code ${code})`;
}
