import { availableBackends, createServer, ErrorCodes, selectBackend } from '../../src';

describe('backend selection', () => {
  it('auto falls back to net here and says why', () => {
    const selection = selectBackend('auto', {});
    if (selection.kind === 'net') expect(selection.reason).toMatch(/^auto: /);
    expect(availableBackends()).toContain(selection.kind);
  });

  it('RINGPORT_BACKEND forces a backend when the option is auto', () => {
    const selection = selectBackend('auto', { RINGPORT_BACKEND: 'net' });
    expect(selection.kind).toBe('net');
    expect(selection.reason).toContain('RINGPORT_BACKEND=net');
  });

  it('an explicit option wins over RINGPORT_BACKEND', () => {
    expect(selectBackend('net', { RINGPORT_BACKEND: 'uring' }).kind).toBe('net');
  });

  it('forcing a backend that cannot run here throws RP_ERR_BACKEND_UNAVAILABLE with the reason', () => {
    const unavailable = (['uring', 'epoll', 'iocp'] as const).filter((k) => !availableBackends().includes(k));
    expect(unavailable.length).toBeGreaterThan(0);
    for (const kind of unavailable) {
      expect(() => selectBackend(kind, {})).toThrow(expect.objectContaining({ code: ErrorCodes.BACKEND_UNAVAILABLE }));
      expect(() => selectBackend('auto', { RINGPORT_BACKEND: kind })).toThrow(/cannot run here: .+/);
    }
  });

  it('an unknown RINGPORT_BACKEND is an invalid argument', () => {
    expect(() => selectBackend('auto', { RINGPORT_BACKEND: 'kqueue' })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
    );
  });

  it('server.backend tells what was chosen and why', () => {
    const server = createServer({ backend: 'net' });
    expect(server.backend).toEqual({ kind: 'net', reason: "forced by backend: 'net'" });
    return server.close();
  });

  it('every backend this run expects loads (RINGPORT_EXPECT_BACKENDS, default net)', () => {
    const expected = (process.env.RINGPORT_EXPECT_BACKENDS ?? 'net').split(',').filter(Boolean);
    expect(availableBackends()).toEqual(expect.arrayContaining(expected));
  });
});
