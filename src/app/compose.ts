import type { DefaultData, PacketContext } from './context';

/** Koa-style middleware: do work, `await next()` to run the rest of the chain, do more work. */
export type Middleware<Data extends object = DefaultData> = (
  ctx: PacketContext<any, Data>,
  next: () => Promise<void>,
) => Promise<void> | void;

/**
 * Composes middleware in order around a final step. Not calling `next`
 * stops the chain (e.g. an auth check that rejects the packet); calling it
 * twice is a bug and rejects.
 */
export function compose(
  middleware: readonly Middleware[],
  final: (ctx: PacketContext) => Promise<void> | void,
): (ctx: PacketContext) => Promise<void> {
  return (ctx) => {
    let called = -1;
    const step = (i: number): Promise<void> => {
      if (i <= called) return Promise.reject(new Error('next() called more than once in one middleware'));
      called = i;
      try {
        const fn = i < middleware.length ? middleware[i] : undefined;
        return Promise.resolve(fn ? fn(ctx, () => step(i + 1)) : final(ctx));
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return step(0);
  };
}
