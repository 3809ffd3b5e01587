import type { WireProtocol } from '../protocol';
import { Session } from './session';
import type { SessionTable } from './session-table';

/**
 * A session a listener accepted. It is announced (the server's `session`
 * event) once its protocol's handshake is over, and closes for good when its
 * connection does.
 */
export class InboundSession<Data extends object = Record<string, any>> extends Session<Data> {
  /** The listener it arrived on. */
  readonly listenerId: number;

  /** @internal */
  constructor(table: SessionTable, listenerId: number, protocol: WireProtocol) {
    super(table, 'connecting', protocol, 'server');
    this.listenerId = listenerId;
  }

  protected override onOpened(): void {
    this.table.announce(this);
  }
}
