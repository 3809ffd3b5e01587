/** Reads an unsigned 2- or 4-byte integer in the given byte order. */
export function readUint(buf: Buffer, offset: number, bytes: 2 | 4, order: 'le' | 'be'): number {
  if (bytes === 2) return order === 'le' ? buf.readUInt16LE(offset) : buf.readUInt16BE(offset);
  return order === 'le' ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
}

/** Writes an unsigned 2- or 4-byte integer in the given byte order. */
export function writeUint(buf: Buffer, offset: number, bytes: 2 | 4, order: 'le' | 'be', value: number): void {
  if (bytes === 2) {
    if (order === 'le') buf.writeUInt16LE(value, offset);
    else buf.writeUInt16BE(value, offset);
  } else if (order === 'le') {
    buf.writeUInt32LE(value, offset);
  } else {
    buf.writeUInt32BE(value, offset);
  }
}
