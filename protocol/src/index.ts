export * from './access';
export * from './client';
export * from './common';
export * from './discovery';
export * from './identity';
export * from './targets';
export * from './ws';
