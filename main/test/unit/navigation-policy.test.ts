import { describe, expect, it } from 'vitest';
import { externalOpenable, isSameOrigin, secureWebPreferences } from '../../src/node/navigation-policy';

describe('desktop navigation policy', () => {
  it('keeps the window on the gateway origin', () => {
    expect(isSameOrigin('http://127.0.0.1:8080/targets', 'http://127.0.0.1:8080')).toBe(true);
    expect(isSameOrigin('http://127.0.0.1:8081/', 'http://127.0.0.1:8080')).toBe(false);
    expect(isSameOrigin('https://evil.example/', 'http://127.0.0.1:8080')).toBe(false);
    expect(isSameOrigin('not a url', 'http://127.0.0.1:8080')).toBe(false);
  });

  it('opens only http(s) links externally', () => {
    expect(externalOpenable('https://docs.example.com')).toBe(true);
    expect(externalOpenable('file:///etc/passwd')).toBe(false);
    expect(externalOpenable('javascript:alert(1)')).toBe(false);
  });

  it('turns the renderer sandbox on', () => {
    expect(secureWebPreferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
    });
  });
});
