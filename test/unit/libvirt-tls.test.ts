// qemu+tls: the wire client over TLS with a client certificate, against the fake libvirtd's TLS listener. The CAs and
// certificates are made with openssl in a temporary directory for this file; nothing is checked in.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtClient } from '../../src/libvirt/client.js';
import { LibvirtConnection, type TlsTransport } from '../../src/libvirt/connection.js';
import { ConnectionError } from '../../src/libvirt/errors.js';
import { LibvirtPool, type AgentLifecycleEventMsg, type LifecycleEventMsg } from '../../src/libvirt/pool.js';
import { KeepaliveProc, RemoteProc } from '../../src/libvirt/procedures.js';
import { LifecycleEvent, MessageStatus, MessageType, PROTOCOL_VERSION, Program, encodePacket } from '../../src/libvirt/protocol.js';
import { FakeLibvirtd, waitFor, type FakeTlsOptions } from '../support/fake-libvirtd.js';

let dir: string;
const file = (name: string) => join(dir, name);
const pem = (name: string) => readFileSync(file(name));
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A certificate signed by the CA named (self-signed when none); leaves get CA:FALSE. */
function makeCert(name: string, cn: string, ca?: string, extra: string[] = []): void {
  const signer = ca ? ['-CA', file(`${ca}.crt`), '-CAkey', file(`${ca}.key`), '-addext', 'basicConstraints=critical,CA:FALSE'] : [];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.crt`),
      '-subj',
      `/CN=${cn}`,
      '-days',
      '2',
      ...signer,
      ...extra,
    ],
    {
      stdio: 'ignore',
    },
  );
}

const SERVER_SAN = ['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'qgw-libvirt-tls-'));
  makeCert('ca', 'qgw test CA');
  makeCert('other-ca', 'some other CA');
  makeCert('server', 'localhost', 'ca', SERVER_SAN);
  makeCert('server-other', 'localhost', 'other-ca', SERVER_SAN); // right names, wrong CA
  makeCert('server-elsewhere', 'hv9.example', 'ca', ['-addext', 'subjectAltName=DNS:hv9.example']); // right CA, wrong names
  makeCert('client', 'gateway', 'ca');
  makeCert('client-other', 'gateway', 'other-ca');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const log = pino({ level: 'silent' });
let fake: FakeLibvirtd | null = null;
const opened: LibvirtConnection[] = [];
const pools: LibvirtPool[] = [];
const servers: tls.Server[] = [];

afterEach(async () => {
  for (const c of opened.splice(0)) c.destroy(new ConnectionError('test over'));
  for (const p of pools.splice(0)) await p.close();
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
  await fake?.stop();
  fake = null;
});

function serverTls(overrides: Partial<FakeTlsOptions> = {}): FakeTlsOptions {
  return { cert: pem('server.crt'), key: pem('server.key'), ca: pem('ca.crt'), requestCert: true, ...overrides };
}

function clientTransport(port: number, overrides: Partial<TlsTransport> = {}): TlsTransport {
  return {
    kind: 'tls',
    host: '127.0.0.1',
    port,
    certFile: file('client.crt'),
    keyFile: file('client.key'),
    caFile: file('ca.crt'),
    verify: true,
    ...overrides,
  };
}

async function startFake(tlsOverrides: Partial<FakeTlsOptions> = {}): Promise<FakeLibvirtd> {
  fake = await FakeLibvirtd.start({ tls: serverTls(tlsOverrides) });
  fake.addDomain({ name: 'vm1' });
  return fake;
}

async function open(transport: TlsTransport, connectTimeoutMs = 2000): Promise<LibvirtConnection> {
  const conn = await LibvirtConnection.open(fake!.connectionOptions({ transport, connectTimeoutMs }));
  opened.push(conn);
  return conn;
}

/** Opens and expects a ConnectionError; answers its message. */
async function openFails(transport: TlsTransport, connectTimeoutMs = 2000): Promise<string> {
  const err = await LibvirtConnection.open(fake!.connectionOptions({ transport, connectTimeoutMs })).then(
    (conn) => {
      opened.push(conn);
      return null;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectionError);
  return (err as ConnectionError).message;
}

describe('qemu+tls transport', () => {
  it('runs a whole session over TLS: CONNECT_OPEN, calls, events, through the pool and the typed client', async () => {
    // The fake told the client's files: its transport and poolOptions() point at the TLS listener ready to use.
    await startFake({ client: { certFile: file('client.crt'), keyFile: file('client.key'), caFile: file('ca.crt') } });
    expect(fake!.transport).toEqual(clientTransport(fake!.port!));
    expect(fake!.uri).toBe(`qemu+tls://127.0.0.1:${fake!.port}/system`);
    const pool = new LibvirtPool(fake!.poolOptions(), log);
    pools.push(pool);
    const lifecycle: LifecycleEventMsg[] = [];
    const agentLifecycle: AgentLifecycleEventMsg[] = [];
    pool.on('lifecycle', (m) => lifecycle.push(m));
    pool.on('agentLifecycle', (m) => agentLifecycle.push(m));
    let subscribed = false;
    pool.on('eventsSubscribed', () => (subscribed = true));
    pool.start();
    await pool.waitUntilUp(3000);
    await waitFor(() => subscribed, 3000, 'event subscription over TLS');

    expect(fake!.clients.every((c) => c.opened && c.openedName === 'qemu:///system')).toBe(true);
    expect(fake!.callCount(RemoteProc.CONNECT_OPEN)).toBe(2);

    const client = new LibvirtClient(pool, 'tls-host');
    const [dom] = await client.listAllDomains();
    expect(dom).toMatchObject({ host: 'tls-host', name: 'vm1', uuid: fake!.domain('vm1').uuid });
    expect(JSON.parse((await client.agentCommand(dom!, '{"execute":"guest-ping"}', 5))!)).toEqual({ return: {} });

    fake!.emitLifecycle('vm1', LifecycleEvent.SUSPENDED, 0);
    fake!.emitAgentLifecycle('vm1', 2, 2);
    await waitFor(() => lifecycle.length === 1 && agentLifecycle.length === 1, 3000, 'events over TLS');
    expect(lifecycle[0]).toMatchObject({ dom: { name: 'vm1' }, event: LifecycleEvent.SUSPENDED });
    expect(agentLifecycle[0]).toMatchObject({ dom: { name: 'vm1' }, state: 2, reason: 2 });
  });

  it('verifies the server by its DNS name when servername is given', async () => {
    await startFake();
    const conn = await open(clientTransport(fake!.port!, { servername: 'localhost' }));
    expect(conn.isOpen).toBe(true);
  });

  it('fails when the server certificate is signed by another CA, naming the CA file and the reason', async () => {
    await startFake({ cert: pem('server-other.crt'), key: pem('server-other.key') });
    const message = await openFails(clientTransport(fake!.port!));
    expect(message).toContain(`does not verify against the CA in ${file('ca.crt')}`);
    expect(message).toMatch(/not signed by that CA \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
    expect(fake!.callCount(RemoteProc.AUTH_LIST)).toBe(0);
  });

  it('fails when the server certificate names another host', async () => {
    await startFake({ cert: pem('server-elsewhere.crt'), key: pem('server-elsewhere.key') });
    const message = await openFails(clientTransport(fake!.port!));
    expect(message).toMatch(/the server's certificate is not for '127\.0\.0\.1'/);
    expect(fake!.callCount(RemoteProc.AUTH_LIST)).toBe(0);
  });

  it('connects to such a server with verify: false (no_verify=1), still presenting the client certificate', async () => {
    await startFake({ cert: pem('server-other.crt'), key: pem('server-other.key') });
    const conn = await open(clientTransport(fake!.port!, { verify: false }));
    expect(conn.isOpen).toBe(true);
    expect(fake!.clients).toHaveLength(1); // the fake asks for and checks the client certificate (requestCert)
  });

  it('fails when the server sends 0 instead of the confirmation byte 1', async () => {
    await startFake({ rejectByte: 0 });
    const message = await openFails(clientTransport(fake!.port!));
    expect(message).toMatch(
      /refused our client certificate .*client\.crt \(server verification of our certificate or IP address failed: it sent 0 instead of 1\)/,
    );
  });

  it('fails when the server closes instead of confirming (a client certificate it does not accept)', async () => {
    await startFake();
    const message = await openFails(
      clientTransport(fake!.port!, { certFile: file('client-other.crt'), keyFile: file('client-other.key') }),
    );
    expect(message).toMatch(/refused our client certificate .*client-other\.crt/);
    expect(fake!.totalConnections).toBe(0);
  });

  it('fails with the name of a missing key file, and picks the file up on the next connect', async () => {
    await startFake();
    const keyFile = file('renewed.key');
    rmSync(keyFile, { force: true });
    const message = await openFails(clientTransport(fake!.port!, { keyFile }));
    expect(message).toBe(`cannot read the TLS client key ${keyFile}: ENOENT`);
    copyFileSync(file('client.key'), keyFile);
    const conn = await open(clientTransport(fake!.port!, { keyFile }));
    expect(conn.isOpen).toBe(true);
  });

  it('fails with the file names when the key does not belong to the certificate', async () => {
    await startFake();
    const message = await openFails(clientTransport(fake!.port!, { keyFile: file('client-other.key') }));
    expect(message).toContain(
      `the TLS client certificate ${file('client.crt')}, its key ${file('client-other.key')} or the CA ${file('ca.crt')} cannot be used`,
    );
  });

  it('fails with the address when nothing listens', async () => {
    await startFake();
    const port = fake!.port!;
    await fake!.stop();
    const message = await openFails(clientTransport(port));
    expect(message).toMatch(
      new RegExp(`cannot connect to libvirtd at tls://127\\.0\\.0\\.1:${port} \\(TCP connect or TLS handshake\\): connect ECONNREFUSED`),
    );
  });

  it('counts the confirmation byte within connectTimeoutMs', async () => {
    // A TLS server that completes the handshake and then says nothing.
    const server = tls.createServer({ cert: pem('server.crt'), key: pem('server.key') }, (s) => s.on('error', () => {}));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    fake = await FakeLibvirtd.start(); // only for connectionOptions()
    const startedAt = Date.now();
    const message = await openFails(clientTransport(port), 300);
    expect(message).toMatch(/timed out after 300 ms \(waiting for the server's confirmation byte\)/);
    expect(Date.now() - startedAt).toBeLessThan(2000);
  });

  it('keeps bytes that arrive together with the confirmation byte for the RPC reader', async () => {
    // The byte 1 and a keepalive PING in one record: the connection must answer the PING with a PONG.
    const ping = encodePacket({
      program: Program.KEEPALIVE,
      version: PROTOCOL_VERSION,
      procedure: KeepaliveProc.PING,
      type: MessageType.MESSAGE,
      serial: 0,
      status: MessageStatus.OK,
    });
    let received = Buffer.alloc(0);
    const server = tls.createServer({ cert: pem('server.crt'), key: pem('server.key') }, (s) => {
      s.on('error', () => {});
      s.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
      s.write(Buffer.concat([Buffer.from([1]), ping]));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    fake = await FakeLibvirtd.start();
    // The handshake calls get no answer, so open() times out; the PONG must have gone out before that.
    const message = await openFails(clientTransport(port), 500);
    expect(message).toMatch(/no answer within 500 ms/);
    // First packet from the client: the PONG (program KEEPALIVE, procedure PONG) or AUTH_LIST then the PONG.
    const programs: number[] = [];
    const procedures: number[] = [];
    for (let off = 0; off + 28 <= received.length; off += received.readUInt32BE(off)) {
      programs.push(received.readUInt32BE(off + 4));
      procedures.push(received.readUInt32BE(off + 12));
    }
    expect(programs).toContain(Program.KEEPALIVE);
    expect(procedures[programs.indexOf(Program.KEEPALIVE)]).toBe(KeepaliveProc.PONG);
  });
});
