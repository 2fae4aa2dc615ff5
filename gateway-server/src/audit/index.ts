export * from './canonical';
export * from './ledger';
