import { backoffDelayMs, resolveReconnect } from '../../src/session/backoff';
import { IdleList, type IdleEntry } from '../../src/session/idle-list';

const entry = (): IdleEntry => ({ idlePrev: null, idleNext: null, lastActiveMs: 0 });

describe('IdleList', () => {
  it('sweeps only the expired entries, oldest first, and touch moves an entry to the back', () => {
    const list = new IdleList<IdleEntry>();
    const [a, b, c] = [entry(), entry(), entry()];
    list.touch(a, 10);
    list.touch(b, 20);
    list.touch(c, 30);
    list.touch(a, 40);
    expect(list.size).toBe(3);
    expect(list.sweep(25)).toEqual([b]);
    expect(list.sweep(35)).toEqual([c]);
    expect(list.size).toBe(1);
    list.remove(a);
    expect(list.sweep(100)).toEqual([]);
    expect(list.size).toBe(0);
  });
});

describe('backoff', () => {
  it('doubles from the initial delay up to the cap, with jitter taking at most its fraction', () => {
    const policy = resolveReconnect({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 })!;
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelayMs(policy, n, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelayMs(policy, 2, () => 1)).toBe(200);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelayMs(policy, 3);
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(800);
    }
  });

  it('rejects nonsense policies with RP_ERR_INVALID_ARGUMENT', () => {
    expect(() => resolveReconnect({ initialDelayMs: 500, maxDelayMs: 100 })).toThrow(
      expect.objectContaining({ code: 'RP_ERR_INVALID_ARGUMENT' }),
    );
    expect(() => resolveReconnect({ jitter: 2 })).toThrow(expect.objectContaining({ code: 'RP_ERR_INVALID_ARGUMENT' }));
    expect(resolveReconnect(false)).toBeUndefined();
  });
});
