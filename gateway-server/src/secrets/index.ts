export * from './master-key';
export * from './sealer';
