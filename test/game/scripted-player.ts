import { connect, type BackendKind, type Client } from '../../src';
import { loadCodec, PACKETS, type PacketName } from '../../examples/game/protocol';

const codec = loadCodec();

export interface Received {
  name: PacketName;
  message: any;
}

/**
 * A lobby client driven step by step by a test: it records every packet it
 * gets and can wait for the next one of a kind.
 */
export class ScriptedPlayer {
  readonly received: Received[] = [];
  private cursor = 0;

  private constructor(readonly client: Client) {
    for (const name of Object.keys(PACKETS) as PacketName[]) {
      client.handle(name, (_session, message) => {
        this.received.push({ name, message: (codec.typeOf(name).toObject(message, { defaults: true }) as unknown) });
      });
    }
  }

  static async connect(port: number, backend: BackendKind): Promise<ScriptedPlayer> {
    return new ScriptedPlayer(await connect({ port, backend, codec }));
  }

  send(name: PacketName, message: object = {}): void {
    this.client.send(name, message);
  }

  /** Waits for the next packet called `name` after the last one taken, and takes it. */
  async next(name: PacketName, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex((r, i) => i >= this.cursor && r.name === name);
      if (index >= 0) {
        this.cursor = index + 1;
        return this.received[index].message;
      }
      if (Date.now() > deadline) {
        const seen = this.received.slice(this.cursor).map((r) => r.name).join(', ');
        throw new Error(`timed out waiting for ${name}; since the last one taken: ${seen || 'nothing'}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Every packet called `name` received so far. */
  all(name: PacketName): any[] {
    return this.received.filter((r) => r.name === name).map((r) => r.message);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
