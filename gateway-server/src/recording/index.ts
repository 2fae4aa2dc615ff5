export * from './catalog';
export * from './writer';
