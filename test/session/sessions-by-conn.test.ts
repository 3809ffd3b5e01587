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
    byConn.delete(old.connId);
    expect(byConn.get(old.connId)).toBeUndefined();
  });

  it('keeps a session whose slot was reused before its close arrived, until it is deleted', () => {
    const byConn = new SessionsByConn();
    const old = session(1 * CONN_SLOT_LIMIT + 7);
    const next = session(2 * CONN_SLOT_LIMIT + 7);
    byConn.add(old);
    byConn.add(next);
    expect(byConn.get(old.connId)).toBe(old);
    expect(byConn.get(next.connId)).toBe(next);
    // The old connection's close comes late: deleting it leaves the slot's new session alone.
    byConn.delete(old.connId);
    expect(byConn.get(old.connId)).toBeUndefined();
    expect(byConn.get(next.connId)).toBe(next);
    byConn.delete(next.connId);
    expect(byConn.get(next.connId)).toBeUndefined();
  });

  it('forgets a session filed under a slot that no longer holds its id', () => {
    const byConn = new SessionsByConn();
    const stale = session(1 * CONN_SLOT_LIMIT + 7);
    byConn.add(stale);
    stale.connId = -1;
    const next = session(2 * CONN_SLOT_LIMIT + 7);
    byConn.add(next);
    expect(byConn.get(-1)).toBeUndefined();
    expect(byConn.get(next.connId)).toBe(next);
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
