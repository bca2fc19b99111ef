// XDR codec, protocol codecs and packet framing: pure functions, no sockets.
import { describe, expect, it } from 'vitest';
import { FramingError, PacketDecoder } from '../../src/libvirt/framing.js';
import {
  HEADER_SIZE,
  MESSAGE_MAX,
  MessageStatus,
  MessageType,
  Program,
  decode,
  domainStateName,
  encode,
  encodePacket,
  headerCodec,
  isUuid,
  remoteErrorCodec,
  uuidFromString,
  uuidToString,
  type Header,
  type RemoteError,
} from '../../src/libvirt/protocol.js';
import { Qemu, QemuProc, Remote, RemoteProc } from '../../src/libvirt/procedures.js';
import { XdrDecodeError, XdrReader, XdrWriter } from '../../src/libvirt/xdr.js';

describe('XDR writer and reader', () => {
  it('round-trips ints, uints and booleans at their limits', () => {
    const w = new XdrWriter(4);
    w.int(0)
      .int(-1)
      .int(2 ** 31 - 1)
      .int(-(2 ** 31))
      .uint(0)
      .uint(0xffffffff)
      .bool(true)
      .bool(false);
    const buf = w.toBuffer();
    expect(buf.length).toBe(32);
    expect(buf.subarray(4, 8)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    const r = new XdrReader(buf);
    expect([r.int(), r.int(), r.int(), r.int(), r.uint(), r.uint(), r.bool(), r.bool()]).toEqual([
      0,
      -1,
      2 ** 31 - 1,
      -(2 ** 31),
      0,
      0xffffffff,
      true,
      false,
    ]);
    expect(r.remaining).toBe(0);
  });

  it('is big-endian on the wire', () => {
    expect(new XdrWriter().uint(0x01020304).toBuffer()).toEqual(Buffer.from([1, 2, 3, 4]));
    expect(new XdrWriter().int(-2).toBuffer()).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xfe]));
  });

  it('pads opaque data and strings to 4 bytes with zeros', () => {
    const w = new XdrWriter();
    w.string('abcde')
      .opaque(Buffer.from([9]))
      .fixedOpaque(Buffer.from([1, 2, 3]), 3)
      .string('');
    const buf = w.toBuffer();
    // 4 (len) + 8 (abcde + 3 pad) + 4 (len) + 4 (9 + 3 pad) + 4 (1,2,3 + pad) + 4 (empty string length)
    expect(buf.length).toBe(28);
    expect(buf.subarray(0, 12)).toEqual(Buffer.from([0, 0, 0, 5, 0x61, 0x62, 0x63, 0x64, 0x65, 0, 0, 0]));
    const r = new XdrReader(buf);
    expect(r.string()).toBe('abcde');
    expect(r.opaque()).toEqual(Buffer.from([9]));
    expect(r.fixedOpaque(3)).toEqual(Buffer.from([1, 2, 3]));
    expect(r.string()).toBe('');
    expect(r.remaining).toBe(0);
  });

  it('round-trips multi-byte UTF-8 strings by byte length', () => {
    const s = 'żółć 🚀 κόσμε';
    const buf = new XdrWriter().string(s).toBuffer();
    expect(buf.readUInt32BE(0)).toBe(Buffer.byteLength(s));
    expect(buf.length % 4).toBe(0);
    expect(new XdrReader(buf).string()).toBe(s);
  });

  it('round-trips optional data and arrays', () => {
    const w = new XdrWriter();
    w.optional<string>(null, (x, v) => void x.string(v));
    w.optional<string>('x', (x, v) => void x.string(v));
    w.array([1, 2, 3], (x, v) => void x.int(v));
    w.array<number>([], (x, v) => void x.int(v));
    const r = new XdrReader(w.toBuffer());
    expect(r.optional((x) => x.string())).toBeNull();
    expect(r.optional((x) => x.string())).toBe('x');
    expect(r.array((x) => x.int())).toEqual([1, 2, 3]);
    expect(r.array((x) => x.int())).toEqual([]);
  });

  it('grows its buffer well past the initial size', () => {
    const w = new XdrWriter(1);
    const big = Buffer.alloc(100_001, 7);
    w.int(5).opaque(big).int(6);
    const r = new XdrReader(w.toBuffer());
    expect(r.int()).toBe(5);
    expect(r.opaque().equals(big)).toBe(true);
    expect(r.int()).toBe(6);
  });

  it('starts reading at an offset', () => {
    const r = new XdrReader(Buffer.from([0xaa, 0xbb, 0, 0, 0, 7]), 2);
    expect(r.int()).toBe(7);
    expect(r.offset).toBe(6);
  });

  it('rejects a fixed opaque of the wrong length', () => {
    expect(() => new XdrWriter().fixedOpaque(Buffer.alloc(3), 16)).toThrow(RangeError);
  });

  it('throws XdrDecodeError on truncated input, never reading past the end', () => {
    const full = new XdrWriter().int(1).string('hello').toBuffer();
    for (let cut = 0; cut < full.length; cut++) {
      const r = new XdrReader(full.subarray(0, cut));
      expect(() => {
        r.int();
        r.string();
      }, `cut at ${cut}`).toThrow(XdrDecodeError);
    }
    expect(() => new XdrReader(Buffer.alloc(3)).uint()).toThrow(/truncated XDR data: need 4 bytes at offset 0, have 3/);
    // A string whose padding is missing is truncated too.
    expect(() => new XdrReader(Buffer.from([0, 0, 0, 1, 0x61])).string()).toThrow(XdrDecodeError);
    // A length word promising more than there is.
    expect(() => new XdrReader(Buffer.from([0x7f, 0xff, 0xff, 0xfc])).opaque()).toThrow(XdrDecodeError);
  });

  // Length words of 2^31 and more must not wrap the padding arithmetic into a negative or tiny size.
  it('rejects huge length words in strings and opaques without a maximum', () => {
    for (const len of [0x7ffffffd, 0x80000000, 0xfffffffe, 0xffffffff]) {
      const buf = Buffer.alloc(12);
      buf.writeUInt32BE(len, 0);
      expect(() => new XdrReader(buf).string(), `length ${len.toString(16)}`).toThrow(XdrDecodeError);
      expect(() => new XdrReader(buf).opaque(), `length ${len.toString(16)}`).toThrow(XdrDecodeError);
    }
  });

  it('enforces maximum lengths and valid booleans', () => {
    const buf = new XdrWriter().string('abcdef').toBuffer();
    expect(() => new XdrReader(buf).string(5)).toThrow(/exceeds maximum 5/);
    expect(() => new XdrReader(buf).opaque(5)).toThrow(XdrDecodeError);
    const arr = new XdrWriter().array([1, 2, 3], (x, v) => void x.int(v)).toBuffer();
    expect(() => new XdrReader(arr).array((x) => x.int(), 2)).toThrow(/array of 3 items exceeds maximum 2/);
    expect(() => new XdrReader(new XdrWriter().int(2).toBuffer()).bool()).toThrow(/invalid XDR boolean 2/);
  });
});

describe('protocol codecs', () => {
  const dom = { name: 'vm-1', uuid: uuidFromString('5f3c0e7a-1b2c-4d5e-8f90-112233445566'), id: 7 };

  it('round-trips the header and knows its size', () => {
    const h: Header = {
      program: Program.QEMU,
      version: 1,
      procedure: 3,
      type: MessageType.REPLY,
      serial: 0xfffffffe,
      status: MessageStatus.ERROR,
    };
    const buf = encode(headerCodec, h);
    expect(buf.length).toBe(HEADER_SIZE);
    expect(decode(headerCodec, buf)).toEqual(h);
  });

  it('round-trips a full remote_error and a minimal one', () => {
    const full: RemoteError = {
      code: 42,
      domain: 10,
      message: "Domain not found: no domain with matching name 'x'",
      level: 2,
      dom,
      str1: 'a',
      str2: null,
      str3: 'c',
      int1: -1,
      int2: 5,
      net: { name: 'default', uuid: Buffer.alloc(16, 1) },
    };
    expect(decode(remoteErrorCodec, encode(remoteErrorCodec, full))).toEqual(full);
    const minimal: RemoteError = { ...full, message: null, dom: null, str1: null, str3: null, net: null };
    expect(decode(remoteErrorCodec, encode(remoteErrorCodec, minimal))).toEqual(minimal);
  });

  it('encodes qemu_domain_agent_command_args in the field order of qemu_protocol.x', () => {
    const buf = encode(Qemu.DOMAIN_AGENT_COMMAND.args, { dom, cmd: '{"execute":"guest-ping"}', timeout: -2, flags: 0 });
    const r = new XdrReader(buf);
    expect(r.string()).toBe('vm-1');
    expect(r.fixedOpaque(16)).toEqual(dom.uuid);
    expect(r.int()).toBe(7);
    expect(r.string()).toBe('{"execute":"guest-ping"}');
    expect(r.int()).toBe(-2);
    expect(r.uint()).toBe(0);
    expect(r.remaining).toBe(0);
    expect(decode(Qemu.DOMAIN_AGENT_COMMAND.args, buf)).toEqual({ dom, cmd: '{"execute":"guest-ping"}', timeout: -2, flags: 0 });
  });

  it('round-trips the other structs used on the wire', () => {
    const cases: Array<[string, Parameters<typeof encode>[0], unknown]> = [
      ['connect_open_args', Remote.CONNECT_OPEN.args, { name: 'qemu:///system', flags: 0 }],
      ['connect_open_args', Remote.CONNECT_OPEN.args, { name: null, flags: 1 }],
      ['auth_list_ret', Remote.AUTH_LIST.ret, { types: [0, 2] }],
      ['list_all_domains_ret', Remote.CONNECT_LIST_ALL_DOMAINS.ret, { domains: [dom, { ...dom, name: 'vm-2', id: -1 }], ret: 2 }],
      ['register_any_args', Remote.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.args, { eventID: 18, dom: null }],
      ['register_any_args', Remote.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.args, { eventID: 0, dom }],
      ['lifecycle_msg', Remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE.body, { callbackID: 3, dom, event: 5, detail: 1 }],
      ['agent_lifecycle_msg', Remote.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE.body, { callbackID: 4, dom, state: 2, reason: 2 }],
      ['agent_command_ret', Qemu.DOMAIN_AGENT_COMMAND.ret, { result: null }],
      ['agent_command_ret', Qemu.DOMAIN_AGENT_COMMAND.ret, { result: '{"return":{}}' }],
      ['get_state_ret', Remote.DOMAIN_GET_STATE.ret, { state: 1, reason: 1 }],
    ];
    for (const [name, c, value] of cases) {
      expect(decode(c, encode(c, value)), name).toEqual(value);
    }
  });

  it('numbers procedures as libvirt does', () => {
    expect(Program).toEqual({ REMOTE: 0x20008086, QEMU: 0x20008087, KEEPALIVE: 0x6b656570 });
    expect(RemoteProc.CONNECT_LIST_ALL_DOMAINS).toBe(273);
    expect(RemoteProc.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE).toBe(348);
    expect(QemuProc.DOMAIN_AGENT_COMMAND).toBe(3);
  });

  it('converts UUIDs between string and bytes', () => {
    const s = '5f3c0e7a-1b2c-4d5e-8f90-112233445566';
    const b = uuidFromString(s);
    expect(b.length).toBe(16);
    expect(uuidToString(b)).toBe(s);
    expect(uuidToString(uuidFromString('5F3C0E7A1B2C4D5E8F90112233445566'))).toBe(s);
    expect(isUuid('not-a-uuid')).toBe(false);
    expect(() => uuidFromString('5f3c0e7a-1b2c-4d5e-8f90-1122334455')).toThrow(RangeError);
  });

  it('names domain states', () => {
    expect(domainStateName(1)).toBe('running');
    expect(domainStateName(5)).toBe('shutoff');
    expect(domainStateName(99)).toBe('nostate');
  });
});

describe('PacketDecoder', () => {
  const packet = (serial: number, body: Buffer = Buffer.alloc(0)) =>
    encodePacket({ program: Program.REMOTE, version: 1, procedure: 23, type: MessageType.REPLY, serial, status: MessageStatus.OK }, body);

  it('frames a packet: the length word counts itself and the header', () => {
    const p = packet(1, Buffer.from([1, 2, 3, 4]));
    expect(p.length).toBe(4 + HEADER_SIZE + 4);
    expect(p.readUInt32BE(0)).toBe(p.length);
  });

  it('reassembles one packet fed byte by byte', () => {
    const body = encode(Remote.DOMAIN_GET_XML_DESC.ret, { xml: '<domain/>'.repeat(20) });
    const p = packet(9, body);
    const d = new PacketDecoder();
    const out = [];
    for (let i = 0; i < p.length; i++) {
      const got = d.push(p.subarray(i, i + 1));
      if (i < p.length - 1) expect(got).toEqual([]);
      out.push(...got);
    }
    expect(out).toHaveLength(1);
    expect(out[0]!.header.serial).toBe(9);
    expect(decode(Remote.DOMAIN_GET_XML_DESC.ret, out[0]!.body).xml).toBe('<domain/>'.repeat(20));
  });

  it('splits many packets delivered in one read, in order', () => {
    const all = Buffer.concat(
      Array.from({ length: 50 }, (_, i) => packet(i + 1, encode(Remote.DOMAIN_LOOKUP_BY_NAME.args, { name: `vm-${i}` }))),
    );
    const got = new PacketDecoder().push(all);
    expect(got.map((p) => p.header.serial)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(got.map((p) => decode(Remote.DOMAIN_LOOKUP_BY_NAME.args, p.body).name)).toEqual(Array.from({ length: 50 }, (_, i) => `vm-${i}`));
  });

  it('handles every split point, including inside the length word, with packets straddling reads', () => {
    const stream = Buffer.concat([packet(1, Buffer.alloc(8, 1)), packet(2), packet(3, Buffer.alloc(12, 3))]);
    for (let a = 1; a < stream.length; a++) {
      for (const b of [a + 1, a + 3, a + 29]) {
        if (b >= stream.length) continue;
        const d = new PacketDecoder();
        const got = [...d.push(stream.subarray(0, a)), ...d.push(stream.subarray(a, b)), ...d.push(stream.subarray(b))];
        expect(
          got.map((p) => p.header.serial),
          `split at ${a},${b}`,
        ).toEqual([1, 2, 3]);
        expect(got[2]!.body).toEqual(Buffer.alloc(12, 3));
      }
    }
  });

  it('survives random chunking of a long stream', () => {
    const packets = Array.from({ length: 200 }, (_, i) => packet(i + 1, Buffer.alloc(i % 37, i & 0xff)));
    const stream = Buffer.concat(packets);
    const d = new PacketDecoder();
    const got = [];
    for (let off = 0; off < stream.length; ) {
      const n = 1 + Math.floor(Math.random() * 100);
      got.push(...d.push(stream.subarray(off, off + n)));
      off += n;
    }
    expect(got.map((p) => p.header.serial)).toEqual(packets.map((_, i) => i + 1));
    expect(got.every((p, i) => p.body.equals(Buffer.alloc(i % 37, i & 0xff)))).toBe(true);
  });

  it('rejects a length shorter than a header or larger than the maximum', () => {
    const tooShort = Buffer.alloc(28);
    tooShort.writeUInt32BE(27, 0);
    expect(() => new PacketDecoder().push(tooShort)).toThrow(FramingError);
    expect(() => new PacketDecoder().push(Buffer.from([0, 0, 0, 0]))).toThrow(/invalid packet length 0/);
    const tooLong = Buffer.alloc(4);
    tooLong.writeUInt32BE(MESSAGE_MAX + 1, 0);
    expect(() => new PacketDecoder().push(tooLong)).toThrow(/invalid packet length/);
    // The length word arriving in pieces is checked as soon as it is complete.
    const d = new PacketDecoder();
    expect(d.push(Buffer.from([0xff, 0xff]))).toEqual([]);
    expect(() => d.push(Buffer.from([0xff, 0xff]))).toThrow(FramingError);
  });

  it('waits for the rest of a packet that announces a large length', () => {
    const d = new PacketDecoder();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1_000_000, 0);
    expect(d.push(head)).toEqual([]);
    expect(d.push(Buffer.alloc(1000))).toEqual([]);
  });
});
