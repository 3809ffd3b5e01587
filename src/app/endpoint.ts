import { selectBackend, type BackendKind } from '../backend';
import { ErrorCodes, RingportError } from '../errors';
import { FramedProtocol, resolveFraming, type Framing, type WireProtocol } from '../protocol';
import { Guard, SessionTable, type PacketKey, type SessionTableOptions } from '../session';
import { rawCodec, type Codec } from './codec';
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
  readonly framing: Framing;
  readonly codec: Codec;
}

/** The pieces a server and a client share: backend choice, framing, codec, dispatcher, session table. */
export function createEndpoint(
  options: EndpointOptions,
  hooks: Pick<SessionTableOptions, 'onAccept' | 'onClose'> & { relay?: readonly PacketKey[] },
  defaultIdleTimeoutMs: number,
  /** What dialled sessions speak, and listeners unless told otherwise; default the framed protocol. */
  protocolOf: (framing: Framing, codec: Codec) => WireProtocol = (framing) => new FramedProtocol(framing),
): Endpoint {
  const selection = selectBackend(options.backend);
  const framing = resolveFraming(options.framing);
  const codec = options.codec ?? rawCodec;
  const { idleTimeoutMs, ...limits } = resolveLimits(options.limits, defaultIdleTimeoutMs);
  const guard = new Guard(options.onError, (options.onHandlerError ?? 'close') === 'close');
  const { relay, ...tableHooks } = hooks;
  const relayIds = new Set((relay ?? []).map((packet) => codec.idOf(packet)));
  for (const id of relayIds) {
    if (!(Number.isInteger(id) && id >= 0 && id <= 0xffff)) {
      throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `relay: packet ids are 0..65535, got ${String(id)}`);
    }
  }
  const dispatcher = new Dispatcher(codec, guard, options, relayIds);
  const table = new SessionTable({
    relayIds,
    backend: selection,
    protocol: protocolOf(framing, codec),
    limits,
    guard,
    idleTimeoutMs,
    codec,
    onPacket: dispatcher.dispatch,
    ...tableHooks,
  });

  return { backend: { kind: selection.kind, reason: selection.reason }, table, dispatcher, guard, framing, codec };
}
