export * from './backend';
export { NetBackend } from './net';
export { selectBackend, availableBackends } from './load';
export type { BackendChoice, BackendSelection } from './load';
export { reusePortSupport } from './reuse-port';
export type { ReusePortSupport } from './reuse-port';
