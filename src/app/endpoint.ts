import { selectBackend, type BackendKind } from '../backend';
import { FramedProtocol, resolveFraming } from '../protocol';
import { Guard, SessionTable, type SessionTableOptions } from '../session';
import { rawCodec } from './codec';
import { Dispatcher } from './dispatcher';
import { resolveLimits, type EndpointOptions } from './options';

/** Which backend an endpoint runs on and why it was chosen. */
export interface BackendInfo {
  readonly kind: BackendKind;
  readonly reason: string;
}

export interface Endpoint {
  readonly backend: BackendInfo;
  readonly table: SessionTable;
  readonly dispatcher: Dispatcher;
  readonly guard: Guard;
}

/** The pieces a server and a client share: backend choice, framing, codec, dispatcher, session table. */
export function createEndpoint(
  options: EndpointOptions,
  hooks: Pick<SessionTableOptions, 'onAccept' | 'onClose'>,
  defaultIdleTimeoutMs: number,
): Endpoint {
  const selection = selectBackend(options.backend);
  const framed = new FramedProtocol(resolveFraming(options.framing));
  const codec = options.codec ?? rawCodec;
  const { idleTimeoutMs, ...limits } = resolveLimits(options.limits, defaultIdleTimeoutMs);
  const guard = new Guard(options.onError, (options.onHandlerError ?? 'close') === 'close');
  const dispatcher = new Dispatcher(codec, guard, options);
  const table = new SessionTable({
    backend: selection,
    protocol: framed,
    limits,
    guard,
    idleTimeoutMs,
    codec,
    onPacket: dispatcher.dispatch,
    ...hooks,
  });

  return { backend: { kind: selection.kind, reason: selection.reason }, table, dispatcher, guard };
}
