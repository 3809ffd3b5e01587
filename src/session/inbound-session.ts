import { Session } from './session';
import type { SessionTable } from './session-table';

/** A session a listener accepted. It closes for good when its connection does. */
export class InboundSession<Data extends object = Record<string, any>> extends Session<Data> {
  /** The listener it arrived on. */
  readonly listenerId: number;

  /** @internal */
  constructor(table: SessionTable, listenerId: number, connId: number, remoteAddress: string, remotePort: number) {
    super(table, 'open');
    this.listenerId = listenerId;
    this.attach(connId, remoteAddress, remotePort);
  }
}
