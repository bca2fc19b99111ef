// Writes a byte stream (an HTTP request body) into an open guest file: gathered into chunks of chunkBytes, one
// guest-file-write each. The next write is queued while the current one runs (the per-domain FIFO queue keeps
// them in order), so that the agent does not wait for the gateway between chunks; the body is not read further
// while two writes are pending (backpressure to the client). The body is counted as it arrives: past maxBytes
// the upload stops before anything past the limit is written.
import { GatewayError } from '../../errors.js';
import type { GuestFile } from './guest-file.js';

export interface UploadLimits {
  chunkBytes: number;
  maxBytes: number;
}

/** Bytes the guest agent confirmed written so far: still true after a failure. */
export interface WriteProgress {
  bytesWritten: number;
}

/**
 * The body's pieces until the signal aborts, which ends the wait for the next piece at once: a client that
 * stalls mid-body must not hold a shutdown (or a gone transfer) until it sends again.
 */
async function* untilAborted<T>(body: AsyncIterable<T> | Iterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it: AsyncIterator<T> | Iterator<T> = Symbol.asyncIterator in body ? body[Symbol.asyncIterator]() : body[Symbol.iterator]();
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    for (;;) {
      const next = await Promise.race([Promise.resolve(it.next()), aborted]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Ends the body's iteration (an unread request body is then discarded with its connection).
    void Promise.resolve(it.return?.()).catch(() => {});
  }
}

/** Agent writes queued at once: the one running and the next. */
const WRITES_IN_FLIGHT = 2;

/** Answers the bytes written (also counted in `progress`). Flushes at the end; closing the handle is the caller's (on every path). */
export async function writeStream(
  file: GuestFile,
  body: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  limits: UploadLimits,
  progress: WriteProgress = { bytesWritten: 0 },
): Promise<number> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let received = 0;
  const inFlight: Promise<void>[] = [];

  // A write queued behind one that failed must not be sent: in place, it would land after the gap.
  let failed = false;
  const order = {
    proceed: () => !failed,
    onOutcome: (ok: boolean) => {
      if (!ok) failed = true;
    },
  };
  const writeChunk = async (chunk: Buffer) => {
    let n: number;
    try {
      n = await file.write(chunk, order);
    } catch (err) {
      failed = true;
      throw err;
    }
    // qemu-ga writes a whole buffer or fails (fwrite); a short write cannot be retried in order behind the
    // next queued chunk, so it ends the upload.
    if (n !== chunk.length) {
      failed = true;
      throw new GatewayError('agent_error', `the guest agent wrote ${n} of ${chunk.length} bytes to ${file.path}`);
    }
    progress.bytesWritten += n;
  };
  const startWrite = async (chunk: Buffer) => {
    while (inFlight.length >= WRITES_IN_FLIGHT) await inFlight.shift();
    const w = writeChunk(chunk);
    w.catch(() => {}); // observed when awaited below; not an unhandled rejection meanwhile
    inFlight.push(w);
  };

  try {
    for await (const piece of untilAborted(body, file.signal)) {
      const buf = typeof piece === 'string' ? Buffer.from(piece) : piece;
      received += buf.length;
      if (received > limits.maxBytes) {
        throw new GatewayError(
          'payload_too_large',
          `the upload is larger than the limit of ${limits.maxBytes} bytes; it stopped after ${progress.bytesWritten} bytes were written`,
        );
      }
      pending.push(buf);
      pendingBytes += buf.length;
      while (pendingBytes >= limits.chunkBytes) {
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        const rest = all.subarray(limits.chunkBytes);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
        await startWrite(all.subarray(0, limits.chunkBytes));
      }
    }
    if (pendingBytes) await startWrite(pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
    while (inFlight.length) await inFlight.shift();
  } catch (err) {
    // Let queued writes settle before the caller closes the handle (they run first in the FIFO queue anyway).
    await Promise.allSettled(inFlight);
    throw err;
  }
  await file.flush();
  return progress.bytesWritten;
}
