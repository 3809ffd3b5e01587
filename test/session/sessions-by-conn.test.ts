import { CONN_SLOT_LIMIT } from '../../src/backend';
import type { Session } from '../../src/session';
import { SessionsByConn } from '../../src/session/sessions-by-conn';

/** Only `connId` is read, so a plain object stands in for a session. */
const session = (connId: number) => ({ connId }) as Session;

describe('SessionsByConn', () => {
  it('finds a session by its whole id, not by a reused slot', () => {
    const byConn = new SessionsByConn();
    const old = session(1 * CONN_SLOT_LIMIT + 7);
    byConn.add(old);
    expect(byConn.get(old.connId)).toBe(old);
    expect(byConn.get(2 * CONN_SLOT_LIMIT + 7)).toBeUndefined();

    const next = session(2 * CONN_SLOT_LIMIT + 7);
    byConn.add(next);
    expect(byConn.get(old.connId)).toBeUndefined();
    // A late delete under the old id leaves the slot's new session alone.
    byConn.delete(old.connId);
    expect(byConn.get(next.connId)).toBe(next);
    byConn.delete(next.connId);
    expect(byConn.get(next.connId)).toBeUndefined();
  });

  it('keeps dials refused with a negative id until their outcome arrives', () => {
    const byConn = new SessionsByConn();
    const refused = session(-1);
    byConn.add(refused);
    expect(byConn.get(-1)).toBe(refused);
    byConn.delete(-1);
    expect(byConn.get(-1)).toBeUndefined();
  });
});
