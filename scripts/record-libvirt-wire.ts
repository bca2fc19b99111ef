// Records the bytes of a few read-only libvirt calls and of the real daemon's replies, for the fixed-byte wire tests
// (test/unit/libvirt-wire.test.ts). Read-only: it connects to libvirtd's read-only socket (which makes the connection
// read-only whatever CONNECT_OPEN's flags say; flags 0 is what LibvirtConnection sends) and only asks: auth list,
// open, a feature, the library version, two lookups, a domain's state, close. The calls come in the order and with
// the serials LibvirtConnection would use, so the test can replay the replies to the real client.
//
//   npx tsx scripts/record-libvirt-wire.ts [/run/libvirt/libvirt-sock-ro] [domain-name]
//
// Prints one line per call: name, the call packet in hex, the reply packet in hex.
import net from 'node:net';
import { PacketDecoder } from '../src/libvirt/framing.js';
import { Remote, type CallProcedure } from '../src/libvirt/procedures.js';
import { MessageStatus, MessageType, PROTOCOL_VERSION, decode, encode, encodePacket } from '../src/libvirt/protocol.js';

const socketPath = process.argv[2] ?? '/run/libvirt/libvirt-sock-ro';
const domain = process.argv[3] ?? 'guest-stopped';

const socket = net.connect({ path: socketPath });
await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
const decoder = new PacketDecoder();
const raw: Buffer[] = [];
let buffered = Buffer.alloc(0);
socket.on('data', (chunk: Buffer) => {
  buffered = Buffer.concat([buffered, chunk]);
  // Keep each whole packet's bytes exactly as they came.
  for (const p of decoder.push(chunk)) {
    const length = 4 + 24 + p.body.length;
    raw.push(buffered.subarray(0, length));
    buffered = buffered.subarray(length);
  }
});

let serial = 0;
async function record<A, R>(label: string, proc: CallProcedure<A, R>, args: A): Promise<Buffer> {
  serial++;
  const call = encodePacket(
    {
      program: proc.program,
      version: PROTOCOL_VERSION,
      procedure: proc.procedure,
      type: MessageType.CALL,
      serial,
      status: MessageStatus.OK,
    },
    encode(proc.args, args),
  );
  const before = raw.length;
  socket.write(call);
  const deadline = Date.now() + 5000;
  while (raw.length === before) {
    if (Date.now() > deadline) throw new Error(`no reply to ${label}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  process.stdout.write(`${label}\n  call  ${call.toString('hex')}\n  reply ${raw[before]!.toString('hex')}\n`);
  return raw[before]!;
}

await record('AUTH_LIST', Remote.AUTH_LIST, undefined);
await record('CONNECT_OPEN qemu:///system', Remote.CONNECT_OPEN, { name: 'qemu:///system', flags: 0 });
await record('CONNECT_SUPPORTS_FEATURE 10', Remote.CONNECT_SUPPORTS_FEATURE, { feature: 10 });
await record('CONNECT_GET_LIB_VERSION', Remote.CONNECT_GET_LIB_VERSION, undefined);
await record('DOMAIN_LOOKUP_BY_NAME no-such-domain', Remote.DOMAIN_LOOKUP_BY_NAME, { name: 'no-such-domain' });
const found = await record(`DOMAIN_LOOKUP_BY_NAME ${domain}`, Remote.DOMAIN_LOOKUP_BY_NAME, { name: domain });
const { dom } = decode(Remote.DOMAIN_LOOKUP_BY_NAME.ret, found.subarray(4 + 24));
await record(`DOMAIN_GET_STATE ${domain}`, Remote.DOMAIN_GET_STATE, { dom, flags: 0 });
await record('CONNECT_CLOSE', Remote.CONNECT_CLOSE, undefined);
socket.end();
