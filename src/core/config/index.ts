// The run and server configuration: one table of keys (keys.ts), their rules (rules.ts), resolution (resolve.ts).
export * from './keys.ts';
export * from './resolve.ts';
export { FASHION_MNIST_DEFAULT_DIR } from '../data/names.ts';
export * from './derived.ts';
