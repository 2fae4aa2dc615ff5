export * from './events';
export * from './gateway';
export * from './oidc-login';
export * from './postgres';
export * from './sshd';
export * from './tls';
export * from './transcript';
