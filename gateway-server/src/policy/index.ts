export * from './duration';
export * from './evaluate';
export * from './rules';
