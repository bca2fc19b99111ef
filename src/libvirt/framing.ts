// Splits a byte stream into libvirt packets: a 4-byte big-endian length that counts itself, then the rest.
import { HEADER_SIZE, MESSAGE_MAX, headerCodec, type Header } from './protocol.js';
import { XdrReader } from './xdr.js';

export interface Packet {
  header: Header;
  body: Buffer;
}

export class FramingError extends Error {
  override name = 'FramingError';
}

export class PacketDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Feeds bytes in; returns every packet completed by them, in order. Throws on a corrupt length. */
  push(chunk: Buffer): Packet[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const packets: Packet[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const length = this.peekLength();
      if (length < 4 + HEADER_SIZE || length > MESSAGE_MAX) {
        throw new FramingError(`invalid packet length ${length}`);
      }
      if (this.buffered < length) break;
      const raw = this.take(length);
      const reader = new XdrReader(raw, 4);
      const header = headerCodec.decode(reader);
      packets.push({ header, body: raw.subarray(4 + HEADER_SIZE) });
    }
    return packets;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    return this.take(4, true).readUInt32BE(0);
  }

  /** Removes n bytes from the front (or only copies them when peeking). */
  private take(n: number, peek = false): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (!peek) {
        if (first.length === n) this.chunks.shift();
        else this.chunks[0] = first.subarray(n);
        this.buffered -= n;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    let i = 0;
    while (copied < n) {
      const c = this.chunks[i]!;
      const part = Math.min(c.length, n - copied);
      c.copy(out, copied, 0, part);
      copied += part;
      if (!peek) {
        if (part === c.length) {
          this.chunks.shift();
          continue;
        }
        this.chunks[0] = c.subarray(part);
      }
      i++;
    }
    if (!peek) this.buffered -= n;
    return out;
  }
}
