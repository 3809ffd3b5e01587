import { availableBackends, type BackendKind } from '../../src';

/**
 * Every backend that loads on this machine. A transport suite wraps its
 * tests in `describe.each(backends)` so that each backend gets the same
 * cases; `test/backends.test.ts` fails when a backend CI expects is missing.
 */
export const backends: BackendKind[] = availableBackends();
