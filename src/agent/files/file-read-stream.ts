// A guest file as a Node Readable: one guest-file-read per chunk. The next read is queued while the current one
// runs, so that the agent never waits for the gateway to decode a reply (JSON, base64: tens of ms a MiB); the
// per-domain FIFO queue keeps them in file order. Reads stop while the client does not take what was read: with
// the high-water mark at one chunk, at most one chunk waits in the stream and one more in the agent, whatever
// the file's size (backpressure from the client's socket).
import { Readable } from 'node:stream';
import { GatewayError } from '../../errors.js';
import type { GuestFile } from './guest-file.js';

export interface ReadRange {
  /** The first byte, where the file's position already is. */
  start: number;
  /** Bytes to send; null: until the agent says eof (size unknown). */
  length: number | null;
}

type Chunk = { data: Buffer; eof: boolean };

/** Agent reads queued at once: the one running and the next. */
const READS_IN_FLIGHT = 2;

export class GuestFileReadStream extends Readable {
  private remaining: number | null;
  /** Bytes asked of the agent so far, for a known length. */
  private requested = 0;
  private readonly inFlight: Promise<Chunk>[] = [];
  private pumping = false;
  private finished = false;
  /** An eof was seen (unknown length): ask no more. */
  private eofSeen = false;

  constructor(
    private readonly file: GuestFile,
    private readonly range: ReadRange,
    private readonly chunkBytes: number,
  ) {
    super({ highWaterMark: chunkBytes });
    this.remaining = range.length;
  }

  override _read(): void {
    if (this.pumping || this.finished) return;
    this.pumping = true;
    void this.pump().finally(() => (this.pumping = false));
  }

  /** Queues reads up to READS_IN_FLIGHT, never past the range. */
  private fill(): void {
    while (this.inFlight.length < READS_IN_FLIGHT && !this.eofSeen) {
      const left = this.range.length === null ? this.chunkBytes : this.range.length - this.requested;
      if (left <= 0) return;
      const want = Math.min(this.chunkBytes, left);
      this.requested += want;
      const read = this.file.read(want);
      read.catch(() => {}); // observed when its turn comes; not unhandled meanwhile
      this.inFlight.push(read);
    }
  }

  /** Sends chunks while the consumer wants them; returns when it wants no more for now, or at the end. */
  private async pump(): Promise<void> {
    try {
      for (;;) {
        if (this.remaining === 0) return await this.end();
        this.fill();
        const next = this.inFlight.shift();
        if (!next) return await this.end();
        const { data, eof } = await next;
        if (this.destroyed) return;
        // The file grew after its size was taken: send what was promised, no more.
        const part = this.remaining !== null && data.length > this.remaining ? data.subarray(0, this.remaining) : data;
        if (this.remaining !== null) this.remaining -= part.length;
        if (eof || (data.length === 0 && this.range.length === null)) this.eofSeen = true;
        const done = this.remaining === 0 || this.eofSeen;
        if (done && this.remaining !== null && this.remaining > 0) {
          // It shrank: the Content-Length already sent cannot be met; the client must see a broken transfer.
          throw new GatewayError('state_conflict', `${this.file.path} shrank while it was read: ${this.remaining} bytes short`);
        }
        if (done) {
          if (part.length) this.push(part);
          return await this.end();
        }
        // Nothing read yet no eof (a pipe or a device): ask again; every read is a round trip, not a busy loop.
        if (part.length === 0) continue;
        if (!this.push(part)) return;
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Closes the handle before the response ends, so that a client that has all the bytes finds it closed. */
  private async end(): Promise<void> {
    this.finished = true;
    // Reads still queued (past an eof) run before the close in the domain's FIFO queue; their bytes are not sent.
    await this.file.close();
    if (!this.destroyed) this.push(null);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.finished = true;
    // The client went away or a read failed: abandon the reads in flight and close the handle.
    void this.file.abortTransfer(err ?? new Error('the download stopped')).finally(() => callback(err));
  }
}
