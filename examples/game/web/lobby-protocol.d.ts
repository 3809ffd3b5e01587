// The module build-web.ts makes at bundle time from the server's own files.
declare module 'lobby-protocol' {
  /** Packet ids by message name: `PACKETS` of ../protocol.ts. */
  export const packets: Readonly<Record<string, number>>;
  /** lobby.proto as protobufjs JSON, for `Root.fromJSON`. */
  export const schema: import('protobufjs/light').INamespace;
}
