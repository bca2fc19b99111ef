// File transfer through the built gateway against a real guest's qemu-ga 7.2: byte-exact round trips (checked
// with sha256sum inside the guest), Range, HEAD, errors, limits, and no handle left open in qemu-ga after a
// client disconnects mid-download. Files live under /tmp/qga-files-test-<random>/ in guest1, small, removed after.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentFds, guestRun, guestSha256 } from './support/files.js';
import { assertProvisioned, guest, waitFor } from './support/guests.js';

const dom = guest((g) => g.name === 'guest1', 'guest1').name;
const dir = `/tmp/qga-files-test-${randomBytes(4).toString('hex')}`;
const MAX_UPLOAD = 4 * 1024 * 1024;
let gw: GatewayProcess;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** The URL path of a guest path. */
const fileUrl = (path: string, query = '') => `/domains/${dom}/files${path.split('/').map(encodeURIComponent).join('/')}${query}`;

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request over a fresh socket, the path sent as is (no URL normalisation). */
function request(
  method: string,
  path: string,
  opts: { body?: Buffer | string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const { port, hostname } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path, headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const json = (r: RawResponse) => JSON.parse(r.body.toString('utf8'));

/** Every byte value, 3 MiB and a bit: more than one 1 MiB chunk, not a multiple of it. */
function allBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 10)) & 0xff;
  return b;
}

beforeAll(async () => {
  assertProvisioned();
  gw = await startGateway({ files: { maxUploadBytes: MAX_UPLOAD } });
  await guestRun(dom, `mkdir -p ${dir}`);
});
afterAll(async () => {
  await guestRun(dom, `rm -rf ${dir}`).catch(() => {});
  await gw?.stop();
});

describe('download', () => {
  it('reads the guest files the image holds', async () => {
    const hello = await request('GET', fileUrl('/srv/qga-test/hello.txt'));
    expect(hello.status).toBe(200);
    expect(hello.headers['content-type']).toBe('application/octet-stream');
    expect(hello.body.toString()).toBe(`hello from ${dom}\n`);
    const osRelease = await request('GET', fileUrl('/etc/os-release'));
    expect(osRelease.body.toString()).toContain('ID=qga-test');
  });

  it('streams a 5 MiB file (more than the RPC string cap) in chunks, with its Content-Length', async () => {
    const r = await request('GET', fileUrl('/srv/qga-test/zero-5MiB.bin'));
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(5 * 1024 * 1024));
    expect(r.body.equals(Buffer.alloc(5 * 1024 * 1024))).toBe(true);
  });

  it('serves procfs files, whose size the agent cannot tell, without Content-Length', async () => {
    const r = await request('GET', fileUrl('/proc/version'));
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.body.toString()).toMatch(/^Linux version /);
  });

  it('answers 404 for a missing file, 403 for one the guest refuses, 400 for a directory', async () => {
    const missing = await request('GET', fileUrl(`${dir}/no-such-file`));
    expect(missing.status).toBe(404);
    expect(json(missing)).toMatchObject({ code: 'file_not_found', agentDesc: expect.stringContaining('No such file or directory') });
    // Write-only for everyone, root included: sysfs refuses to open it for reading.
    const denied = await request('GET', fileUrl('/sys/bus/pci/rescan'));
    expect(denied.status).toBe(403);
    expect(json(denied)).toMatchObject({ code: 'permission_denied', agentDesc: expect.stringContaining('Permission denied') });
    const directory = await request('GET', fileUrl('/srv/qga-test'));
    expect(directory.status).toBe(400);
  });

  it.each([
    ['empty', `/domains/${'guest1'}/files/`],
    ['NUL', `/domains/guest1/files/etc/pa%00sswd`],
    ['dot-dot', `/domains/guest1/files/tmp/../etc/passwd`],
    ['drive-relative', `/domains/guest1/files/C:x.txt`],
  ])('answers 400 for a bad path (%s)', async (_what, path) => {
    for (const method of ['GET', 'HEAD', 'PUT']) {
      const r = await request(method, path, method === 'PUT' ? { body: 'x' } : {});
      expect(r.status, `${method} ${path}`).toBe(400);
    }
  });
});

describe('upload, then download', () => {
  const content = allBytes(3 * 1024 * 1024 + 12345);
  const path = `${dir}/every-byte.bin`;

  it('round-trips every byte value exactly (sha256 inside the guest)', async () => {
    const put = await request('PUT', fileUrl(path), { body: content, headers: { 'content-type': 'application/octet-stream' } });
    expect(put.status).toBe(200);
    expect(json(put)).toMatchObject({ domain: { name: dom }, path, mode: 'truncate', bytesWritten: content.length });
    expect(await guestSha256(dom, path)).toBe(sha256(content));
    const get = await request('GET', fileUrl(path));
    expect(get.headers['content-length']).toBe(String(content.length));
    expect(sha256(get.body)).toBe(sha256(content));
  });

  it('answers HEAD with the size and no body', async () => {
    const r = await request('HEAD', fileUrl(path));
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(content.length));
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.body.length).toBe(0);
  });

  it.each([
    ['start', 0, 99],
    ['middle', 1024 * 1024 - 10, 2 * 1024 * 1024 + 10],
    ['end', content.length - 1000, content.length - 1],
  ])('serves a Range at the %s', async (_what, start, end) => {
    const r = await request('GET', fileUrl(path), { headers: { range: `bytes=${start}-${end}` } });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${content.length}`);
    expect(r.body.equals(content.subarray(start, end + 1))).toBe(true);
  });

  it('answers 416 with Content-Range bytes */size past the end', async () => {
    const r = await request('GET', fileUrl(path), { headers: { range: `bytes=${content.length}-` } });
    expect(r.status).toBe(416);
    expect(r.headers['content-range']).toBe(`bytes */${content.length}`);
    expect(json(r).code).toBe('range_not_satisfiable');
  });

  it('writes and reads an empty file', async () => {
    const p = `${dir}/empty`;
    const put = await request('PUT', fileUrl(p));
    expect(json(put).bytesWritten).toBe(0);
    expect((await guestRun(dom, `wc -c < ${p}`)).trim()).toBe('0');
    const get = await request('GET', fileUrl(p));
    expect(get.status).toBe(200);
    expect(get.headers['content-length']).toBe('0');
    expect(get.body.length).toBe(0);
  });

  it('appends and writes at an offset', async () => {
    const p = `${dir}/log.txt`;
    await request('PUT', fileUrl(p), { body: 'hello' });
    expect(json(await request('PUT', fileUrl(p, '?mode=append'), { body: ' world' })).bytesWritten).toBe(6);
    expect(json(await request('PUT', fileUrl(p, '?offset=6'), { body: 'W' })).mode).toBe('offset');
    expect((await request('GET', fileUrl(p))).body.toString()).toBe('hello World');
    expect(await guestRun(dom, `cat ${p}`)).toBe('hello World');
  });

  it('answers 413 for a body over the limit and writes nothing of it', async () => {
    const p = `${dir}/too-big`;
    const r = await request('PUT', fileUrl(p), { body: Buffer.alloc(MAX_UPLOAD + 1) }).catch((err: Error) => err);
    // The gateway answers before reading the body and closes the connection; the client may see either.
    if (r instanceof Error) expect(r.message).toMatch(/EPIPE|ECONNRESET/);
    else {
      expect(r.status).toBe(413);
      expect(json(r).code).toBe('payload_too_large');
    }
    expect((await request('HEAD', fileUrl(p))).status).toBe(404);
  });
});

describe('handle hygiene', () => {
  it('leaves no handle open in qemu-ga after a client disconnects mid-download', async () => {
    const p = `${dir}/sparse-20M.bin`;
    // Sparse on the guest's tmpfs: reading its holes allocates no memory in the guest.
    await guestRun(dom, `truncate -s 20M ${p}`);
    const before = await agentFds(dom, dir);
    expect(before.matching).toEqual([]);
    const { port, hostname } = new URL(gw.url);
    let received = 0;
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: hostname, port, path: fileUrl(p), agent: false }, (res) => {
        expect(res.statusCode).toBe(200);
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (received >= 1024 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (err) => (received >= 1024 * 1024 ? undefined : reject(err)));
    });
    expect(received).toBeLessThan(20 * 1024 * 1024);
    // guest-file-close follows the read in flight; others' commands on this shared guest may come and go meanwhile.
    await waitFor(
      'qemu-ga to have closed the file',
      async () => {
        const now = await agentFds(dom, dir);
        return now.matching.length === 0 && now.count <= before.count;
      },
      30_000,
      1000,
    );
    expect(gw.logs.some((l) => l.includes('guest-file-close failed'))).toBe(false);
  });

  it('closes the handle of a running download when the gateway is stopped (SIGTERM)', async () => {
    const p = `${dir}/sparse-shutdown.bin`;
    await guestRun(dom, `truncate -s 20M ${p}`);
    const before = await agentFds(dom, dir);
    const own = await startGateway();
    const { port, hostname } = new URL(own.url);
    let received = 0;
    const ended = new Promise<void>((resolve) => {
      const req = http.get({ host: hostname, port, path: fileUrl(p), agent: false }, (res) => {
        res.on('data', (c: Buffer) => (received += c.length));
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
    });
    await waitFor('the download to start', async () => received > 0, 30_000, 100);
    expect(await own.stop('SIGTERM')).toBe(0);
    await ended;
    expect(received).toBeLessThan(20 * 1024 * 1024);
    expect(own.logs.some((l) => l.includes('closing guest file handles of transfers still running'))).toBe(true);
    const after = await agentFds(dom, dir);
    expect(after.matching).toEqual([]);
    expect(after.count).toBeLessThanOrEqual(before.count + 2);
  });
});
