import { describe, expect, it } from 'vitest';
import {
  desktopCsp,
  externalOpenable,
  isSameOrigin,
  navigationDecision,
  permissionAllowed,
  requestAllowed,
  secureWebPreferences,
  wantsBearer,
  withDesktopCsp,
} from '../../src/node/navigation-policy';

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

describe('desktop session policy', () => {
  const APP = 'https://gw.example.com';

  it('lets the window reach only its own origin, HTTP and WebSocket', () => {
    expect(requestAllowed('https://gw.example.com/api/targets', APP)).toBe(true);
    expect(requestAllowed('wss://gw.example.com/api/ws', APP)).toBe(true);
    expect(requestAllowed('data:image/png;base64,AAAA', APP)).toBe(true);
    expect(requestAllowed('ws://gw.example.com/api/ws', APP)).toBe(false); // downgrade
    expect(requestAllowed('https://fonts.googleapis.com/css', APP)).toBe(false);
    expect(requestAllowed('https://gw.example.com:444/', APP)).toBe(false);
    expect(requestAllowed('file:///etc/passwd', APP)).toBe(false);
  });

  it('turns the console sign-in link into the system-browser sign-in and refuses the rest of /auth', () => {
    expect(navigationDecision('https://gw.example.com/inbox', APP)).toBe('allow');
    expect(navigationDecision('https://gw.example.com/auth/login', APP)).toBe('sign-in');
    expect(navigationDecision('https://gw.example.com/auth/callback?code=x', APP)).toBe('deny');
    expect(navigationDecision('https://idp.example.com/authorize', APP)).toBe('deny');
    expect(navigationDecision('javascript:alert(1)', APP)).toBe('deny');
  });

  it('adds the bearer token to API calls and the event socket only', () => {
    expect(wantsBearer('https://gw.example.com/api/me', APP)).toBe(true);
    expect(wantsBearer('wss://gw.example.com/api/ws', APP)).toBe(true);
    expect(wantsBearer('https://gw.example.com/assets/index.js', APP)).toBe(false);
    expect(wantsBearer('https://gw.example.com/apiary', APP)).toBe(false);
    expect(wantsBearer('https://evil.example/api/me', APP)).toBe(false);
  });

  it('enforces a strict CSP: own scripts only, no eval, no inline script, no frames, own socket', () => {
    const csp = desktopCsp(APP);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(csp).toContain("connect-src 'self' wss://gw.example.com");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    expect(desktopCsp('http://127.0.0.1:8080')).toContain("connect-src 'self' ws://127.0.0.1:8080");
    const headers = withDesktopCsp(
      { 'content-security-policy': ['default-src *'], 'Content-Type': 'text/html' },
      APP,
    );
    expect(headers['content-security-policy']).toBeUndefined();
    expect(headers['Content-Security-Policy']).toEqual([csp]);
    expect(headers['Content-Type']).toEqual(['text/html']);
  });

  it('grants only clipboard writes and fullscreen, only to the app', () => {
    expect(permissionAllowed('clipboard-sanitized-write', 'https://gw.example.com/', APP)).toBe(true);
    expect(permissionAllowed('media', 'https://gw.example.com/', APP)).toBe(false);
    expect(permissionAllowed('notifications', 'https://gw.example.com/', APP)).toBe(false);
    expect(permissionAllowed('clipboard-sanitized-write', 'https://evil.example/', APP)).toBe(false);
  });
});
