// The HTTP front door under abuse: refusals that cost the gateway nothing (rate limit per address, bounded
// request ids and audit lines), requests that arrive too slowly, secrets that must not reach any log at any
// level, JSON nested deeper than any route needs, and two Authorization headers on one request. The slow and
// malformed requests go over a raw TCP socket to a listening server: light-my-request has no socket to time
// out, and it may merge duplicate headers.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SCOPES } from '../../src/config/scopes.js';
import { newToken, tokenSha256 } from '../../src/auth/tokens.js';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Gateway } from '../../src/gateway.js';
import { buildApp } from '../../src/http/app.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../../src/http/json-body.js';
import { RefusalCounter } from '../../src/http/refusal-limit.js';
import { createLogger } from '../../src/logger.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import type { AgentHandler, FakeLibvirtd } from '../support/fake-libvirtd.js';
import { GuestControlAgent } from '../support/guest-control-agent.js';
import { build } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
const sockets = new Set<net.Socket>();

// Runs before the harness's own clean-up: the client sockets first, then the gateway (one test builds its own).
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await gw?.close();
  gw = null;
});

const tokens = { admin: newToken(), reader: newToken() };
const identities = [
  { name: 'admin', tokenSha256: tokenSha256(tokens.admin), scopes: [...SCOPES] },
  { name: 'reader', tokenSha256: tokenSha256(tokens.reader), scopes: ['read' as const] },
];
/** Shaped like a token, matching none. */
const WRONG = newToken();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function start(overrides: Record<string, unknown>, handler?: AgentHandler) {
  ({ fake, gw } = await build({ domains: ['web1'], ...(handler ? { agent: handler } : {}), config: overrides as never }));
  return gw;
}

async function listen(): Promise<number> {
  await gw!.app.listen({ host: '127.0.0.1', port: 0 });
  return (gw!.app.server.address() as net.AddressInfo).port;
}

interface RawClient {
  socket: net.Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves with the ms since connect when the server closes the socket, or null past `withinMs`. */
  closed(withinMs: number): Promise<number | null>;
}

function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port });
    sockets.add(socket);
    const started = Date.now();
    let data = '';
    let closedAt: number | null = null;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', () => {});
    socket.on('close', () => (closedAt = Date.now() - started));
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        closed: (withinMs) =>
          new Promise((done) => {
            if (closedAt !== null) return done(closedAt);
            const timer = setTimeout(() => done(null), withinMs);
            socket.once('close', () => {
              clearTimeout(timer);
              done(Date.now() - started);
            });
          }),
      }),
    );
    socket.once('error', reject);
  });
}

/** Writes one byte every `everyMs` until the socket closes or `bytes` run out; the timer stops with the socket. */
function trickle(socket: net.Socket, bytes: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable || i >= bytes.length) return clearInterval(timer);
    socket.write(bytes[i++]!);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

/** A secret shows up in a log as itself, base64-encoded, or as the byte list of a serialised Buffer. */
function leaks(text: string, secret: string): boolean {
  const bytes = [...Buffer.from(secret)].join(',');
  return text.includes(secret) || text.includes(Buffer.from(secret).toString('base64')) || text.includes(bytes);
}

describe('refusals are rate limited per address (limits.unauthenticated)', () => {
  it('defaults to 30 refusals a minute', () => {
    expect((parseConfig({}).limits as Record<string, unknown>).unauthenticated).toEqual({ max: 30, timeWindowMs: 60_000 });
  });

  it('answers 429 past the limit, audits the first excess once, and still lets a valid token from that address in', async () => {
    await start({
      auth: { mode: 'tokens', identities },
      limits: { rateLimit: { max: 0 }, unauthenticated: { max: 3, timeWindowMs: 60_000 } },
    });
    const post = (token: string, remoteAddress = '127.0.0.1') =>
      gw!.app.inject({
        method: 'POST',
        url: '/domains/web1/exec',
        remoteAddress,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload: '{"path":"/bin/true"}',
      });
    for (let i = 0; i < 3; i++) expect((await post(WRONG)).statusCode).toBe(401);
    for (let i = 0; i < 5; i++) {
      const limited = await post(WRONG);
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(limited.json()).toMatchObject({ code: 'rate_limited', status: 429 });
      const retryAfter = Number(limited.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // Refusals count per address: another one is refused with 401 as usual.
    expect((await post(WRONG, '192.0.2.7')).statusCode).toBe(401);
    // A valid token is never refused for its address's refusals.
    const ok = await gw!.app.inject({ method: 'GET', url: '/domains', headers: { authorization: `Bearer ${tokens.reader}` } });
    expect(ok.statusCode).toBe(200);
    const denied = gw!.audit.filter((a) => a.status === 401);
    expect(denied).toHaveLength(4);
    const limited = gw!.audit.filter((a) => a.status === 429);
    expect(limited).toHaveLength(1);
    expect(limited[0]).toMatchObject({ event: 'refusals_limited', remote: '127.0.0.1', identity: null });
    expect(String(limited[0]!.note)).toMatch(/not audited/);
  });

  it('counts two Authorization headers as a refusal too', async () => {
    await start({
      auth: { mode: 'tokens', identities },
      limits: { rateLimit: { max: 0 }, unauthenticated: { max: 1, timeWindowMs: 60_000 } },
    });
    const twice = () =>
      gw!.app.inject({
        method: 'GET',
        url: '/domains',
        headers: { authorization: [`Bearer ${tokens.reader}`, `Bearer ${WRONG}`] as never },
      });
    expect((await twice()).statusCode).toBe(400);
    expect((await twice()).statusCode).toBe(429);
  });

  it('counts in fixed windows per address, in a table that never outgrows its bound', () => {
    let now = 0;
    const counter = new RefusalCounter(2, 1_000, 3, () => now);
    expect(counter.count('a')).toEqual({ limited: false });
    expect(counter.count('a')).toEqual({ limited: false });
    expect(counter.count('a')).toEqual({ limited: true, first: true, retryAfterMs: 1_000 });
    now = 400;
    expect(counter.count('a')).toEqual({ limited: true, first: false, retryAfterMs: 600 });
    now = 1_000;
    expect(counter.count('a')).toEqual({ limited: false });
    for (let i = 0; i < 100; i++) counter.count(`b${i}`);
    expect(counter.addresses).toBe(3);
    // Expired windows go first, whatever the table holds.
    now = 5_000;
    counter.count('c');
    expect(counter.addresses).toBe(1);
  });
});

describe('request ids and audit lines are bounded', () => {
  it('takes a client X-Request-Id only as 1-128 of [A-Za-z0-9._~:-], else generates a UUID', async () => {
    await start({});
    const idOf = async (sent: string) => {
      const res = await gw!.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': sent } });
      return String(res.headers['x-request-id']);
    };
    for (const good of ['a', 'abc-123', 'A.b_c~d:e-f', 'x'.repeat(128)]) expect(await idOf(good)).toBe(good);
    // Too long, outside the characters, or one of our tokens sent in the wrong header: a fresh UUID instead.
    for (const bad of ['x'.repeat(129), 'x'.repeat(15 * 1024), 'a b', 'a/b', 'a,b', 'é', '<script>', tokens.reader])
      expect(await idOf(bad)).toMatch(UUID);
    const problem = await gw!.app.inject({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': 'y'.repeat(15 * 1024) } });
    expect(problem.json().requestId).toMatch(UUID);
    expect(JSON.stringify(gw!.logs)).not.toContain('y'.repeat(129));
  });

  it('keeps every audit line under a fixed size whatever the request', async () => {
    await start({ auth: { mode: 'tokens', identities }, rawCommands: { enabled: true } });
    const auth = { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/json' };
    const longDomain = 'd'.repeat(2000);
    await gw!.app.inject({
      method: 'POST',
      url: `/domains/${longDomain}/exec`,
      headers: { authorization: `Bearer ${WRONG}`, 'x-request-id': 'r'.repeat(15 * 1024) },
      payload: '{}',
    });
    await gw!.app.inject({
      method: 'POST',
      url: '/domains/web1/exec',
      headers: auth,
      payload: JSON.stringify({ path: '/'.concat('p'.repeat(200_000)) }),
    });
    await gw!.app.inject({
      method: 'POST',
      url: '/domains/web1/agent/commands',
      headers: auth,
      payload: JSON.stringify({ execute: 'e'.repeat(100_000) }),
    });
    await gw!.app.inject({
      method: 'POST',
      url: '/domains/web1/fsfreeze',
      headers: auth,
      payload: JSON.stringify({ mountpoints: Array.from({ length: 2000 }, (_, i) => `/m${i}/${'m'.repeat(100)}`) }),
    });
    await gw!.app.inject({
      method: 'PUT',
      url: `/domains/web1/files/${'f'.repeat(2000)}`,
      headers: { authorization: `Bearer ${tokens.reader}` },
      payload: 'x',
    });
    expect(gw!.audit.length).toBeGreaterThanOrEqual(5);
    for (const line of gw!.audit) expect(JSON.stringify(line).length, JSON.stringify(line).slice(0, 300)).toBeLessThan(8 * 1024);
    // Cut, and saying so.
    expect(gw!.audit.some((a) => typeof a.program === 'string' && /…\(200001 chars\)$/.test(a.program))).toBe(true);
    expect(gw!.audit.some((a) => Array.isArray(a.mountpoints) && a.mountpoints.length <= 33)).toBe(true);
  });
});

describe('slow requests are cut at the configured timeouts', () => {
  it('closes a connection whose body trickles in past limits.requestTimeoutMs', async () => {
    await start({ limits: { requestTimeoutMs: 1500, headersTimeoutMs: 1000 } });
    const c = await rawClient(await listen());
    c.socket.write('POST /domains/web1/exec HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    trickle(c.socket, ' '.repeat(999), 100);
    // Enforced within about a second of the deadline; a wide margin against a busy machine.
    const after = await c.closed(10_000);
    expect(after, 'still open after 10 s').not.toBeNull();
    expect(after!).toBeGreaterThanOrEqual(1000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(c.received()).toContain('"code":"request_timeout"');
  }, 20_000);

  it('closes a connection whose headers trickle in past limits.headersTimeoutMs', async () => {
    await start({ limits: { requestTimeoutMs: 20_000, headersTimeoutMs: 1000 } });
    const c = await rawClient(await listen());
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    trickle(c.socket, 'X-Slow: a\r\n'.repeat(1000), 100);
    const after = await c.closed(10_000);
    expect(after, 'still open after 10 s').not.toBeNull();
    expect(after!).toBeGreaterThanOrEqual(500);
  }, 20_000);

  it('closes the connection after a 401 answered before the body arrived, instead of draining it', async () => {
    await start({ auth: { mode: 'tokens', identities }, limits: { requestTimeoutMs: 60_000 } });
    const c = await rawClient(await listen());
    c.socket.write(
      `POST /domains/web1/exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRONG}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
    );
    trickle(c.socket, ' '.repeat(99_999), 100);
    const after = await c.closed(8_000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 401 /);
    expect(c.received()).toMatch(/\r\nconnection: close\r\n/i);
    expect(after, 'still open after 8 s').not.toBeNull();
  }, 20_000);
});

describe('no log level prints a secret', () => {
  it('keeps tokens, passwords, file and stdin contents out of every log and audit line at level trace', async () => {
    ({ fake } = await build({ domains: ['web1'], gateway: false }));
    const files = new FakeGuestFiles();
    const control = new GuestControlAgent();
    fake.agentHandler = async (dom, cmd, timeout) => {
      if (cmd.execute === 'guest-info') {
        const a = (await files.handler(dom, cmd, timeout)) as { return: { supported_commands: { name: string }[] } };
        const b = (await control.handler(dom, cmd, timeout)) as { return: { supported_commands: { name: string }[] } };
        const names = new Set([...a.return.supported_commands, ...b.return.supported_commands].map((c) => c.name));
        return {
          return: { version: '7.2.22', supported_commands: [...names].map((name) => ({ name, enabled: true, 'success-response': true })) },
        };
      }
      return files.owns(cmd) ? files.handler(dom, cmd, timeout) : control.handler(dom, cmd, timeout);
    };
    let out = '';
    const capture = {
      write: (line: string) => {
        out += line;
      },
    };
    const config = parseConfig({
      auth: { mode: 'tokens', identities },
      log: { level: 'trace' },
      state: { dir: mkdtempSync(join(tmpdir(), 'qga-state-')) },
      libvirt: { uri: fake.uri, connections: 1, keepaliveIntervalMs: 0 },
    } satisfies ConfigInput);
    const log = createLogger(config.log.level, capture);
    const gateway = new Gateway(config, log);
    const app = await buildApp(gateway, log, pino({ level: 'trace' }, capture));
    app.addHook('onClose', async () => gateway.close(config.shutdownGraceMs));
    await gateway.start();
    await Promise.all(gateway.hosts.list.map((h) => h.pool.waitUntilUp(5000)));
    gw = { app, gateway, logs: [], audit: [], close: () => app.close() };
    const port = await listen();

    const password = 'pw-SECRET-correct-horse-4711';
    const upload = 'FILE-SECRET-content-0815';
    const stdin = 'STDIN-SECRET-text-1234';
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    expect((await app.inject({ method: 'GET', url: '/domains', headers: bearer(tokens.admin) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/domains', headers: bearer(WRONG) })).statusCode).toBe(401);
    const inQuery = await app.inject({ method: 'GET', url: `/domains?access_token=${tokens.admin}` });
    expect(inQuery.statusCode).toBe(400);
    expect(inQuery.json()).toMatchObject({ code: 'invalid_request' });
    expect(inQuery.json().detail).toMatch(/Authorization header/);
    expect(
      (await app.inject({ method: 'GET', url: `/domains?timeoutMs=1000&q=${tokens.reader}`, headers: bearer(tokens.admin) })).statusCode,
    ).toBe(400);
    expect((await app.inject({ method: 'GET', url: `/healthz?x=${encodeURIComponent(tokens.reader)}` })).statusCode).toBe(400);
    const pw = await app.inject({
      method: 'PUT',
      url: '/domains/web1/users/root/password',
      headers: { ...bearer(tokens.admin), 'content-type': 'application/json' },
      payload: JSON.stringify({ password }),
    });
    expect(pw.statusCode).toBe(204);
    const put = await app.inject({
      method: 'PUT',
      url: '/domains/web1/files/tmp/a',
      headers: { ...bearer(tokens.admin), 'content-type': 'application/octet-stream' },
      payload: upload,
    });
    expect(put.statusCode).toBe(200);
    expect(files.files.get('/tmp/a')?.toString()).toBe(upload);
    const exec = await app.inject({
      method: 'POST',
      url: '/domains/web1/exec',
      headers: { ...bearer(tokens.admin), 'content-type': 'application/json' },
      payload: JSON.stringify({ path: '/bin/cat', input: { text: stdin } }),
    });
    expect(exec.statusCode).toBe(201);
    // Not HTTP at all past the first header: Node's parser fails and keeps the bytes read in err.rawPacket.
    const c = await rawClient(port);
    c.socket.write(`GET /domains HTTP/1.1\r\nAuthorization: Bearer ${tokens.reader}\r\nBad Header\u0001: x\r\n\r\n`);
    expect(await c.closed(5_000)).not.toBeNull();
    expect(c.received()).toMatch(/^HTTP\/1\.1 400 /);
    expect(c.received()).toMatch(/content-type: application\/problem\+json/i);
    await app.close();
    gw = null;

    expect(out.split('\n').length).toBeGreaterThan(10);
    for (const secret of [tokens.admin, tokens.reader, WRONG, password, upload, stdin]) expect(leaks(out, secret), secret).toBe(false);
    expect(out).not.toContain('rawPacket');
  });

  it('redacts err.rawPacket whoever logs it, and shows a query only as the route declares it', async () => {
    let out = '';
    const log = createLogger('trace', {
      write: (line: string) => {
        out += line;
      },
    });
    const secret = newToken();
    log.trace(
      {
        err: Object.assign(new Error('Parse Error'), {
          code: 'HPE_INVALID_HEADER_TOKEN',
          rawPacket: Buffer.from(`Authorization: Bearer ${secret}`),
        }),
      },
      'client error',
    );
    log.trace({ rawPacket: Buffer.from(secret) }, 'bare');
    expect(leaks(out, secret)).toBe(false);
    expect(out).toContain('HPE_INVALID_HEADER_TOKEN');

    await start({});
    await gw!.app.inject({ method: 'GET', url: '/domains/web1/agent/ping?timeoutMs=1000&foo=bar&x%00y=1' });
    await gw!.app.inject({ method: 'GET', url: '/nowhere?timeoutMs=1000' });
    const urls = gw!.logs.filter((l) => l.msg === 'request').map((l) => l.url);
    expect(urls).toEqual(['/domains/web1/agent/ping?timeoutMs=1000&foo=[redacted]&[redacted]=[redacted]', '/nowhere?timeoutMs=[redacted]']);
  });
});

describe('JSON nesting depth', () => {
  const nested = (depth: number, open: string, close: string, inner = '0') => open.repeat(depth) + inner + close.repeat(depth);

  it('counts only brackets outside strings, escaped quotes included', () => {
    expect(nestedDeeperThan(nested(MAX_JSON_DEPTH, '[', ']'), MAX_JSON_DEPTH)).toBe(false);
    expect(nestedDeeperThan(nested(MAX_JSON_DEPTH + 1, '[', ']'), MAX_JSON_DEPTH)).toBe(true);
    expect(nestedDeeperThan(JSON.stringify({ a: '[[[[{{{{"\\' }), 2)).toBe(false);
    expect(nestedDeeperThan(`{"a":"\\\\",  "b":[[[]]]}`, 3)).toBe(true);
    expect(nestedDeeperThan(`{"a":"\\"[[[[", "b":1}`, 1)).toBe(false);
  });

  it('refuses bodies nested deeper than the limit with 400 invalid_request, before any agent command', async () => {
    await start({ rawCommands: { enabled: true } });
    const bodies = [
      `{"execute":"guest-get-users","arguments":{"a":${nested(100_000, '[', ']', '')}}}`,
      `{"execute":"guest-get-users","arguments":${nested(1_000, '{"a":', '}')}}`,
      `{"execute":"guest-get-users","arguments":{"a":${nested(1_000, '[', ']', '')}}}`,
      nested(100_000, '[', ']', ''),
    ];
    for (const payload of bodies) {
      const res = await gw!.app.inject({
        method: 'POST',
        url: '/domains/web1/agent/commands',
        headers: { 'content-type': 'application/json' },
        payload,
      });
      expect(res.statusCode, payload.slice(0, 60)).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'invalid_request' });
      expect(res.json().detail).toMatch(/nested/);
    }
    expect(fake!.agentLog).toEqual([]);
  });

  it('lets shallow bodies through, and does not count brackets inside strings', async () => {
    await start({ rawCommands: { enabled: true } });
    const payloads = [
      `{"execute":"guest-ping","arguments":{"a":${nested(30, '{"a":', '}')}}}`,
      `{"execute":"guest-ping","arguments":{"a":${JSON.stringify('[{"\\'.repeat(5000))}}}`,
    ];
    for (const payload of payloads) {
      const res = await gw!.app.inject({
        method: 'POST',
        url: '/domains/web1/agent/commands',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        payload,
      });
      expect(res.statusCode, res.body.slice(0, 200)).toBe(200);
    }
  });
});

describe('two Authorization headers', () => {
  it('refuses them with 400 invalid_request whatever their order and case', async () => {
    await start({ auth: { mode: 'tokens', identities } });
    const port = await listen();
    for (const [a, b] of [
      [`Authorization: Bearer ${tokens.admin}`, `authorization: Bearer ${WRONG}`],
      [`AUTHORIZATION: Bearer ${WRONG}`, `Authorization: Bearer ${tokens.admin}`],
      [`Authorization: Bearer ${tokens.admin}`, `Authorization: Bearer ${tokens.admin}`],
    ]) {
      const c = await rawClient(port);
      c.socket.write(`GET /domains HTTP/1.1\r\nHost: x\r\n${a}\r\n${b}\r\nConnection: close\r\n\r\n`);
      await c.closed(5_000);
      expect(c.received(), `${a} / ${b}`).toMatch(/^HTTP\/1\.1 400 /);
      expect(c.received()).toContain('"code":"invalid_request"');
    }
    // One is fine.
    const c = await rawClient(port);
    c.socket.write(`GET /domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.admin}\r\nConnection: close\r\n\r\n`);
    await c.closed(5_000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
  });
});
