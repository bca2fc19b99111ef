// Splits the raw byte stream from a guest agent into replies. qemu-ga ends every reply with "\n" (its JSON has no raw
// newlines) and writes the byte 0xFF, which never occurs in UTF-8 JSON, just before the answer to guest-sync-delimited.
// The splitter only frames; the channel decides what each frame means. It never holds more than maxLineBytes of one
// line: a longer run is reported once as overflow and then counted, not stored, until its end.

export type Frame =
  /** A complete line without its "\n". delimited: a 0xFF came directly before it. */
  | { type: 'line'; bytes: Buffer; delimited: boolean }
  /** The line in progress passed maxLineBytes; its bytes are dropped (and reported by a 'dropped' frame at its end). */
  | { type: 'overflow' }
  /** Bytes thrown away: an overflowing line when it ended (terminator included), or a partial line cut by a 0xFF. */
  | { type: 'dropped'; bytes: number; reason: 'overflow' | 'cut' };

const NEWLINE = 0x0a;
export const SENTINEL = 0xff;

export class ReplySplitter {
  private parts: Buffer[] = [];
  private length = 0;
  private delimited = false;
  private overflowing = false;
  private overflowBytes = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onFrame: (frame: Frame) => void,
  ) {}

  /** Bytes of the unfinished line held (or counted, when overflowing). */
  get pendingBytes(): number {
    return this.overflowing ? this.overflowBytes : this.length;
  }

  feed(chunk: Buffer): void {
    let pos = 0;
    // Both positions are searched once and only the consumed one again, so a chunk holding many short replies is not
    // scanned to its end for every reply.
    let nextNewline = chunk.indexOf(NEWLINE, pos);
    let nextSentinel = chunk.indexOf(SENTINEL, pos);
    while (pos < chunk.length) {
      const end = nextNewline < 0 ? nextSentinel : nextSentinel < 0 ? nextNewline : Math.min(nextNewline, nextSentinel);
      if (end < 0) {
        this.append(chunk.subarray(pos));
        return;
      }
      if (end > pos) this.append(chunk.subarray(pos, end));
      pos = end + 1;
      if (end === nextNewline) {
        this.endLine();
        nextNewline = chunk.indexOf(NEWLINE, pos);
      } else {
        this.cut();
        nextSentinel = chunk.indexOf(SENTINEL, pos);
      }
    }
  }

  private append(piece: Buffer): void {
    if (this.overflowing) {
      this.overflowBytes += piece.length;
      return;
    }
    if (this.length + piece.length > this.maxLineBytes) {
      this.overflowing = true;
      this.overflowBytes = this.length + piece.length;
      this.parts = [];
      this.length = 0;
      this.onFrame({ type: 'overflow' });
      return;
    }
    // Copied: the socket's chunk may be reused by the caller once feed() returns.
    this.parts.push(Buffer.from(piece));
    this.length += piece.length;
  }

  private endLine(): void {
    if (this.overflowing) {
      const bytes = this.overflowBytes + 1;
      this.reset(false);
      this.onFrame({ type: 'dropped', bytes, reason: 'overflow' });
      return;
    }
    const bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.length);
    const delimited = this.delimited;
    this.reset(false);
    this.onFrame({ type: 'line', bytes, delimited });
  }

  /** A 0xFF: whatever line was in progress can never be completed into valid JSON. */
  private cut(): void {
    const bytes = this.pendingBytes;
    const reason = this.overflowing ? 'overflow' : 'cut';
    this.reset(true);
    if (bytes > 0) this.onFrame({ type: 'dropped', bytes, reason });
  }

  private reset(delimited: boolean): void {
    this.parts = [];
    this.length = 0;
    this.overflowing = false;
    this.overflowBytes = 0;
    this.delimited = delimited;
  }
}
