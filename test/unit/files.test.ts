// File routes in process against the fake libvirtd with an in-memory guest file system: byte-exact round
// trips, Range, HEAD, bad input, limits, and a handle closed on every path (errors, deadlines, clients that go
// away, shutdown).
import type { InjectOptions } from 'fastify';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { waitFor, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import { putChunked, startUpload } from '../support/http-upload.js';
import { build } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';

const CHUNK = 64 * 1024;
let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let guest: FakeGuestFiles;

async function setup(files: Record<string, unknown> = {}) {
  guest = new FakeGuestFiles();
  ({ fake, gw } = await build({
    domains: ['web1'],
    agent: guest.handler,
    config: { files: { chunkBytes: CHUNK, writeChunkBytes: CHUNK, ...files }, agent: { abandonGraceMs: 200 } },
  }));
  return gw;
}

/** Every byte value, in a length that is not a multiple of the chunk size. */
function allBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

async function listen(): Promise<number> {
  await gw!.app.listen({ port: 0, host: '127.0.0.1' });
  return (gw!.app.server.address() as AddressInfo).port;
}

const inject = (opts: InjectOptions) => gw!.app.inject(opts);
const fileCommands = () => fake!.agentLog.filter((e) => e.execute.startsWith('guest-file-')).map((e) => e.execute);

describe('GET /domains/{domain}/files/{path}', () => {
  it('streams a file byte for byte, in chunks of at most chunkBytes, and closes the handle', async () => {
    await setup();
    const content = allBytes(3 * CHUNK + 12345);
    guest.files.set('/srv/data.bin', content);
    const res = await inject({ method: 'GET', url: '/domains/web1/files/srv/data.bin' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    // A guest's HTML file is never rendered or run by a browser that opens it.
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-length']).toBe(String(content.length));
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.rawPayload.equals(content)).toBe(true);
    expect(guest.maxReadCount).toBeLessThanOrEqual(CHUNK);
    expect(guest.counts.get('guest-file-read')).toBe(4);
    expect(guest.opened).toHaveLength(1);
    // The request log names each command once, however many chunks.
    const line = gw!.logs.find((l) => l.msg === 'request' && l.url === '/domains/web1/files/srv/data.bin');
    expect(line?.agentCommands).toEqual(['guest-info', 'guest-file-open', 'guest-file-seek', 'guest-file-read', 'guest-file-close']);
    expect(guest.leaked).toEqual([]);
  });

  it('serves an empty file with Content-Length 0', async () => {
    await setup();
    guest.files.set('/empty', Buffer.alloc(0));
    const res = await inject({ method: 'GET', url: '/domains/web1/files/empty' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe('0');
    expect(res.rawPayload.length).toBe(0);
    expect(guest.leaked).toEqual([]);
  });

  it('percent-decodes the path', async () => {
    await setup();
    guest.files.set('/tmp/a b/ü.txt', Buffer.from('x'));
    const res = await inject({ method: 'GET', url: '/domains/web1/files/tmp/a%20b/%C3%BC.txt' });
    expect(res.statusCode).toBe(200);
    expect(res.payload).toBe('x');
  });

  it.each([
    ['start', 'bytes=0-99', 0, 99],
    ['middle', 'bytes=70000-140000', 70000, 140000],
    ['end', 'bytes=190000-', 190000, 3 * CHUNK + 99],
    ['suffix', 'bytes=-500', 3 * CHUNK + 100 - 500, 3 * CHUNK + 99],
    ['past the end', 'bytes=196000-999999999', 196000, 3 * CHUNK + 99],
  ])('serves a Range at the %s with 206 and Content-Range', async (_what, range, start, end) => {
    await setup();
    const content = allBytes(3 * CHUNK + 100);
    guest.files.set('/f', content);
    const res = await inject({ method: 'GET', url: '/domains/web1/files/f', headers: { range } });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${content.length}`);
    expect(res.headers['content-length']).toBe(String(end - start + 1));
    expect(res.rawPayload.equals(content.subarray(start, end + 1))).toBe(true);
    expect(guest.leaked).toEqual([]);
  });

  it('answers 416 with Content-Range bytes */size for a range outside the file', async () => {
    await setup();
    guest.files.set('/f', allBytes(1000));
    for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
      const res = await inject({ method: 'GET', url: '/domains/web1/files/f', headers: { range } });
      expect(res.statusCode, range).toBe(416);
      expect(res.headers['content-range']).toBe('bytes */1000');
      expect(res.json().code).toBe('range_not_satisfiable');
    }
    expect(guest.counts.get('guest-file-read')).toBeUndefined();
    expect(guest.leaked).toEqual([]);
  });

  it('ignores several ranges and malformed ones: the whole file, 200', async () => {
    await setup();
    guest.files.set('/f', allBytes(1000));
    for (const range of ['bytes=0-1,5-6', 'lines=1-2', 'bytes=9-3']) {
      const res = await inject({ method: 'GET', url: '/domains/web1/files/f', headers: { range } });
      expect(res.statusCode, range).toBe(200);
      expect(res.rawPayload.length).toBe(1000);
    }
  });

  it('streams a file whose size the guest cannot tell, without Content-Length', async () => {
    await setup();
    guest.files.set('/proc/cpuinfo', Buffer.from('processor : 0\n'));
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-seek' && (cmd.arguments as { whence: string }).whence === 'end'
        ? { error: { class: 'GenericError', desc: 'failed to seek file: Invalid argument' } }
        : undefined;
    const res = await inject({ method: 'GET', url: '/domains/web1/files/proc/cpuinfo', headers: { range: 'bytes=0-1' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.payload).toBe('processor : 0\n');
    expect(guest.leaked).toEqual([]);
  });

  it('answers 404 file_not_found and 403 permission_denied with the agent message', async () => {
    await setup();
    guest.denied.add('/root/secret');
    const missing = await inject({ method: 'GET', url: '/domains/web1/files/no/such/file' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({
      code: 'file_not_found',
      agentDesc: "failed to open file '/no/such/file' (mode: 'r'): No such file or directory",
    });
    const denied = await inject({ method: 'GET', url: '/domains/web1/files/root/secret' });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().code).toBe('permission_denied');
    expect(denied.json().detail).toMatch(/Permission denied/);
    expect(guest.opened).toEqual([]);
  });

  it.each([
    ['empty', '/domains/web1/files/'],
    ['NUL', '/domains/web1/files/etc/pa%00sswd'],
    ['dot-dot', '/domains/web1/files/etc/%2E%2E/shadow'],
    ['dot', '/domains/web1/files/./etc/passwd'],
    ['drive-relative', '/domains/web1/files/C:x.txt'],
    ['a trailing slash', '/domains/web1/files/etc/'],
  ])('answers 400 for a bad path (%s) without asking the agent', async (_what, url) => {
    await setup();
    // Over a real socket: inject() would resolve the dot segments as a URL parser does.
    const port = await listen();
    for (const method of ['GET', 'HEAD', 'PUT'] as const) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method, path: url }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end(method === 'PUT' ? 'x' : undefined);
      });
      expect(status, `${method} ${url}`).toBe(400);
    }
    expect(fileCommands()).toEqual([]);
  });

  it('closes the handle when a read fails mid-stream, and the client sees a broken transfer', async () => {
    await setup();
    guest.files.set('/f', allBytes(4 * CHUNK));
    let reads = 0;
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-read' && ++reads === 2
        ? { error: { class: 'GenericError', desc: 'failed to read file: Input/output error' } }
        : undefined;
    const port = await listen();
    const outcome = await new Promise<string>((resolve) => {
      http
        .get(`http://127.0.0.1:${port}/domains/web1/files/f`, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(`ended after ${n}`));
          res.on('error', () => resolve('broken'));
          res.on('aborted', () => resolve('broken'));
        })
        .on('error', () => resolve('broken'));
    });
    expect(outcome).toBe('broken');
    await waitFor(() => guest.leaked.length === 0, 3000, 'the handle to close');
    expect(guest.closed).toHaveLength(1);
  });

  it('closes the handle when the client disconnects mid-download, and reads no further', async () => {
    await setup();
    guest.files.set('/big', allBytes(40 * CHUNK));
    const port = await listen();
    await new Promise<void>((resolve) => {
      const req = http.get(`http://127.0.0.1:${port}/domains/web1/files/big`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
    });
    await waitFor(() => guest.closed.length === 1, 3000, 'the handle to close');
    expect(guest.leaked).toEqual([]);
    expect(gw!.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
    const reads = guest.counts.get('guest-file-read')!;
    expect(reads).toBeLessThan(40);
    await new Promise((r) => setTimeout(r, 200));
    expect(guest.counts.get('guest-file-read')).toBe(reads);
  });

  it('reads ahead at most one chunk of a client that does not read', async () => {
    await setup();
    guest.files.set('/big', allBytes(200 * CHUNK));
    const port = await listen();
    const req = http.get(`http://127.0.0.1:${port}/domains/web1/files/big`, (res) => res.pause());
    req.on('error', () => {});
    // Socket buffers on both sides absorb some chunks; the rest must wait for the client.
    await new Promise((r) => setTimeout(r, 1500));
    const reads = guest.counts.get('guest-file-read') ?? 0;
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThan(100);
    req.destroy();
    await waitFor(() => guest.leaked.length === 0, 3000, 'the handle to close');
  });

  it('closes the handle when a chunk passes its deadline', async () => {
    await setup();
    guest.files.set('/f', allBytes(3 * CHUNK));
    let reads = 0;
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-read' && ++reads === 2
        ? new Promise((r) => setTimeout(() => r({ return: { count: 0, 'buf-b64': '', eof: true } }), 1500))
        : undefined;
    const port = await listen();
    const outcome = await new Promise<string>((resolve) => {
      http
        .get(`http://127.0.0.1:${port}/domains/web1/files/f?timeoutMs=300`, (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve('ended'));
          res.on('error', () => resolve('broken'));
        })
        .on('error', () => resolve('broken'));
    });
    expect(outcome).toBe('broken');
    await waitFor(() => guest.leaked.length === 0, 5000, 'the handle to close');
  });

  it('closes the handles of running downloads when the gateway shuts down', async () => {
    await setup();
    guest.files.set('/big', allBytes(100 * CHUNK));
    const port = await listen();
    const req = http.get(`http://127.0.0.1:${port}/domains/web1/files/big`, (res) => res.pause());
    req.on('error', () => {});
    await waitFor(() => (guest.counts.get('guest-file-read') ?? 0) > 0, 3000, 'the download to start');
    await gw!.close();
    gw = null;
    expect(guest.opened).toHaveLength(1);
    expect(guest.leaked).toEqual([]);
    req.destroy();
  });
});

describe('HEAD /domains/{domain}/files/{path}', () => {
  it('answers the size without reading the file', async () => {
    await setup();
    guest.files.set('/f', allBytes(123457));
    const res = await inject({ method: 'HEAD', url: '/domains/web1/files/f' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe('123457');
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.rawPayload.length).toBe(0);
    expect(fileCommands()).toEqual(['guest-file-open', 'guest-file-seek', 'guest-file-close']);
    const missing = await inject({ method: 'HEAD', url: '/domains/web1/files/nope' });
    expect(missing.statusCode).toBe(404);
  });

  it('tells an empty file from one whose size is unknown', async () => {
    await setup();
    guest.files.set('/empty', Buffer.alloc(0));
    const res = await inject({ method: 'HEAD', url: '/domains/web1/files/empty' });
    expect(res.headers['content-length']).toBe('0');
    expect(guest.leaked).toEqual([]);
  });
});

describe('PUT /domains/{domain}/files/{path}', () => {
  it('round-trips every byte value through upload and download', async () => {
    await setup();
    const content = allBytes(5 * CHUNK + 777);
    const put = await inject({
      method: 'PUT',
      url: '/domains/web1/files/tmp/up.bin',
      payload: content,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({
      domain: { name: 'web1' },
      path: '/tmp/up.bin',
      mode: 'truncate',
      offset: null,
      bytesWritten: content.length,
    });
    expect(guest.files.get('/tmp/up.bin')!.equals(content)).toBe(true);
    const writes = fake!.agentLog
      .filter((e) => e.execute === 'guest-file-write')
      .map((e) => Buffer.from((e.arguments as { 'buf-b64': string })['buf-b64'], 'base64').length);
    expect(writes).toEqual([CHUNK, CHUNK, CHUNK, CHUNK, CHUNK, 777]);
    expect(fileCommands().slice(-2)).toEqual(['guest-file-flush', 'guest-file-close']);
    const get = await inject({ method: 'GET', url: '/domains/web1/files/tmp/up.bin' });
    expect(get.rawPayload.equals(content)).toBe(true);
    expect(guest.leaked).toEqual([]);
  });

  it('takes any content type, and none, as raw bytes', async () => {
    await setup();
    for (const headers of [{ 'content-type': 'application/x-www-form-urlencoded' }, { 'content-type': 'application/json' }, {}] as Record<
      string,
      string
    >[]) {
      const res = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/t', payload: '{"a":1}&b', headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(200);
      expect(guest.files.get('/tmp/t')!.toString()).toBe('{"a":1}&b');
    }
  });

  it('writes an empty file', async () => {
    await setup();
    guest.files.set('/tmp/e', Buffer.from('old'));
    const res = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/e' });
    expect(res.statusCode).toBe(200);
    expect(res.json().bytesWritten).toBe(0);
    expect(guest.files.get('/tmp/e')!.length).toBe(0);
    expect(guest.leaked).toEqual([]);
  });

  it('appends, and writes at an offset keeping the rest', async () => {
    await setup();
    guest.files.set('/tmp/log', Buffer.from('hello'));
    const app = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/log?mode=append', payload: ' world' });
    expect(app.json()).toMatchObject({ mode: 'append', bytesWritten: 6 });
    expect(guest.files.get('/tmp/log')!.toString()).toBe('hello world');
    const at = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/log?offset=6', payload: 'W' });
    expect(at.json()).toMatchObject({ mode: 'offset', offset: 6, bytesWritten: 1 });
    expect(guest.files.get('/tmp/log')!.toString()).toBe('hello World');
    const created = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/new?offset=2', payload: 'x' });
    expect(created.statusCode).toBe(200);
    expect(guest.files.get('/tmp/new')!).toEqual(Buffer.from([0, 0, 0x78]));
    const both = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/log?offset=1&mode=append', payload: 'x' });
    expect(both.statusCode).toBe(400);
    expect(guest.leaked).toEqual([]);
  });

  it('answers 413 for a declared Content-Length over the limit without opening anything', async () => {
    await setup({ maxUploadBytes: 1000 });
    const res = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/big', payload: Buffer.alloc(1001) });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('payload_too_large');
    expect(guest.opened).toEqual([]);
    const ok = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/big', payload: Buffer.alloc(1000) });
    expect(ok.statusCode).toBe(200);
  });

  it('answers 413 for a chunked body that grows past the limit, writing nothing past it', async () => {
    await setup({ maxUploadBytes: 2 * CHUNK + 10 });
    const port = await listen();
    const result = await putChunked(port, '/domains/web1/files/tmp/chunked?atomic=false', 4 * CHUNK);
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body).code).toBe('payload_too_large');
    expect(guest.files.get('/tmp/chunked')!.length).toBeLessThanOrEqual(2 * CHUNK + 10);
    await waitFor(() => guest.leaked.length === 0, 3000, 'the handle to close');
  });

  it('closes the handle when the client disconnects mid-upload', async () => {
    await setup();
    const port = await listen();
    const req = startUpload(port, '/domains/web1/files/tmp/partial', 10 * CHUNK, Buffer.alloc(3 * CHUNK, 2));
    await waitFor(() => (guest.counts.get('guest-file-write') ?? 0) >= 2, 3000, 'writes to start');
    req.destroy();
    await waitFor(() => guest.closed.length === 1, 3000, 'the handle to close');
    expect(guest.leaked).toEqual([]);
    // A client that leaves is not a gateway fault: nothing logged at error level.
    await new Promise((r) => setTimeout(r, 100));
    expect(gw!.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
  });

  it('answers the agent error of a failed write and closes the handle', async () => {
    await setup();
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-write'
        ? { error: { class: 'GenericError', desc: 'failed to write to file: No space left on device' } }
        : undefined;
    const res = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/full', payload: Buffer.alloc(100) });
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({ code: 'agent_error', agentDesc: 'failed to write to file: No space left on device' });
    expect(guest.leaked).toEqual([]);
  });
});

describe('closing while the guest is frozen', () => {
  it('retries a refused guest-file-close in the background without holding the answer', async () => {
    await setup();
    guest.files.set('/f', Buffer.from('data'));
    let refusals = 0;
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-close' && refusals++ < 1
        ? { error: { class: 'CommandNotFound', desc: 'Command guest-file-close has been disabled' } }
        : undefined;
    const res = await inject({ method: 'GET', url: '/domains/web1/files/f' });
    expect(res.statusCode).toBe(200);
    expect(res.payload).toBe('data');
    expect(guest.leaked).toHaveLength(1);
    expect(gw!.gateway.files.openHandles()).toHaveLength(1);
    await waitFor(() => guest.leaked.length === 0 && gw!.gateway.files.openHandles().length === 0, 8000, 'the retried close');
  });

  it('makes one last close attempt at shutdown instead of waiting for the thaw', async () => {
    await setup();
    guest.files.set('/f', Buffer.from('data'));
    let frozen = true;
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-close' && frozen
        ? { error: { class: 'CommandNotFound', desc: 'Command guest-file-close has been disabled' } }
        : undefined;
    await inject({ method: 'GET', url: '/domains/web1/files/f' });
    expect(guest.leaked).toHaveLength(1);
    frozen = false;
    await gw!.close();
    gw = null;
    expect(guest.leaked).toEqual([]);
  });
});

describe('chunks, paths and sharing the agent', () => {
  it('writes at most 128 KiB a command by default, even with 1 MiB read chunks', async () => {
    await setup({ chunkBytes: 1024 * 1024, writeChunkBytes: undefined });
    const content = allBytes(300 * 1024);
    const res = await inject({ method: 'PUT', url: '/domains/web1/files/tmp/w', payload: content });
    expect(res.statusCode).toBe(200);
    const writes = fake!.agentLog
      .filter((e) => e.execute === 'guest-file-write')
      .map((e) => Buffer.from((e.arguments as { 'buf-b64': string })['buf-b64'], 'base64').length);
    expect(writes).toEqual([131072, 131072, 300 * 1024 - 262144]);
    expect(guest.files.get('/tmp/w')!.equals(content)).toBe(true);
  });

  it('hands a Windows path to the agent with its drive letter first', async () => {
    await setup();
    guest.files.set('C:/Windows/win.ini', Buffer.from('[fonts]'));
    const res = await inject({ method: 'GET', url: '/domains/web1/files/C:/Windows/win.ini' });
    expect(res.statusCode).toBe(200);
    expect(res.payload).toBe('[fonts]');
    expect(fake!.agentLog.find((e) => e.execute === 'guest-file-open')!.arguments).toEqual({ path: 'C:/Windows/win.ini', mode: 'r' });
  });

  it("lets another request's command run between two chunks of a download", async () => {
    await setup();
    guest.files.set('/big', allBytes(20 * CHUNK));
    guest.intercept = (cmd) => (cmd.execute === 'guest-file-read' ? new Promise((r) => setTimeout(() => r(undefined), 30)) : undefined);
    const download = inject({ method: 'GET', url: '/domains/web1/files/big' });
    await waitFor(() => (guest.counts.get('guest-file-read') ?? 0) >= 2, 3000, 'the download to start');
    const ping = await inject({ method: 'GET', url: '/domains/web1/agent/ping' });
    expect(ping.statusCode).toBe(200);
    expect(guest.counts.get('guest-file-read')!).toBeLessThan(20);
    expect((await download).rawPayload.length).toBe(20 * CHUNK);
    expect(guest.leaked).toEqual([]);
  });
});

describe('files config', () => {
  it('refuses chunk sizes the agent or libvirt cannot carry', async () => {
    const { parseConfig } = await import('../../src/config/load.js');
    expect(parseConfig({}).files).toEqual({
      chunkBytes: 1048576,
      writeChunkBytes: 131072,
      maxUploadBytes: 1073741824,
      chunkTimeoutMs: 30000,
      closeTimeoutMs: 10000,
      closeRetryMs: 330000,
    });
    expect(() => parseConfig({ files: { chunkBytes: 2 * 1024 * 1024 + 1 } })).toThrow();
    expect(() => parseConfig({ files: { writeChunkBytes: 128 * 1024 + 1 } })).toThrow();
  });
});
