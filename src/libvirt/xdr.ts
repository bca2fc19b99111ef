// XDR (RFC 4506) encoding, just the parts libvirt's RPC protocol uses.

/** Length rounded up to XDR's 4-byte unit, without 32-bit bit tricks that turn huge lengths negative. */
function padTo4(length: number): number {
  return length + ((4 - (length % 4)) % 4);
}

export class XdrWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.alloc(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  bool(v: boolean): this {
    return this.int(v ? 1 : 0);
  }

  /** Fixed-length opaque: no length prefix, padded to 4 bytes. */
  fixedOpaque(data: Uint8Array, length: number): this {
    if (data.length !== length) throw new RangeError(`fixed opaque needs ${length} bytes, got ${data.length}`);
    const padded = padTo4(length);
    this.ensure(padded);
    this.buf.set(data, this.pos);
    this.buf.fill(0, this.pos + length, this.pos + padded);
    this.pos += padded;
    return this;
  }

  /** Variable-length opaque: uint32 length, bytes, padding. */
  opaque(data: Uint8Array): this {
    this.uint(data.length);
    return this.fixedOpaque(data, data.length);
  }

  string(s: string): this {
    return this.opaque(Buffer.from(s, 'utf8'));
  }

  /** XDR optional-data (`type *name`): a boolean, then the value when present. */
  optional<T>(value: T | null | undefined, write: (w: this, v: T) => void): this {
    if (value === null || value === undefined) return this.bool(false);
    this.bool(true);
    write(this, value);
    return this;
  }

  array<T>(items: readonly T[], write: (w: this, v: T) => void): this {
    this.uint(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  toBuffer(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class XdrDecodeError extends Error {
  override name = 'XdrDecodeError';
}

export class XdrReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    offset = 0,
  ) {
    this.pos = offset;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new XdrDecodeError(`truncated XDR data: need ${n} bytes at offset ${this.pos}, have ${this.buf.length - this.pos}`);
    }
  }

  int(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bool(): boolean {
    const v = this.int();
    if (v !== 0 && v !== 1) throw new XdrDecodeError(`invalid XDR boolean ${v}`);
    return v === 1;
  }

  fixedOpaque(length: number): Buffer {
    const padded = padTo4(length);
    this.need(padded);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + length));
    this.pos += padded;
    return out;
  }

  opaque(max = Infinity): Buffer {
    const len = this.uint();
    if (len > max) throw new XdrDecodeError(`opaque of ${len} bytes exceeds maximum ${max}`);
    return this.fixedOpaque(len);
  }

  string(max = Infinity): string {
    const len = this.uint();
    if (len > max) throw new XdrDecodeError(`string of ${len} bytes exceeds maximum ${max}`);
    const padded = padTo4(len);
    this.need(padded);
    // Buffer's own decoder: several times faster than TextDecoder on the multi-megabyte agent replies.
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += padded;
    return s;
  }

  optional<T>(read: (r: this) => T): T | null {
    return this.bool() ? read(this) : null;
  }

  array<T>(read: (r: this) => T, max = Infinity): T[] {
    const n = this.uint();
    if (n > max) throw new XdrDecodeError(`array of ${n} items exceeds maximum ${max}`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(read(this));
    return out;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }
}
