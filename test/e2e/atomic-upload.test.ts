// Uploads that replace a file whole or not at all, against guest1's real qemu-ga 7.2 and busybox: the old file
// byte-identical (sha256 in the guest) after a client that leaves half-way, a body over the limit, a link or a
// directory as target, and a gateway SIGKILLed mid-upload (whose temporary file the next start removes); a
// completed upload keeps the old file's owner and mode. Files live under /tmp/qga-atomic-<random>/ in guest1.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentFds, guestRun, guestSha256 } from './support/files.js';
import { assertProvisioned, guest, waitFor } from './support/guests.js';

const dom = guest((g) => g.name === 'guest1', 'guest1').name;
const dir = `/tmp/qga-atomic-${randomBytes(4).toString('hex')}`;
const MAX_UPLOAD = 8 * 1024 * 1024;
let gw: GatewayProcess;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const fileUrl = (path: string, query = '') => `/domains/${dom}/files${path}${query}`;

/** The gateway's temporary files in the test directory (their names carry .qga-gateway-). */
const strays = async () => (await guestRun(dom, `ls -a ${dir}`)).split('\n').filter((n) => n.includes('.qga-gateway-'));
const modeAndOwner = async (path: string) => (await guestRun(dom, `stat -c '%a %u:%g' ${path}`)).trim();

interface Answer {
  status: number;
  body: any;
}

function put(g: GatewayProcess, path: string, body: Buffer, query = ''): Promise<Answer> {
  const { port, hostname } = new URL(g.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method: 'PUT', path: fileUrl(path, query), agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Sends `sent` bytes of a body declared `declared` bytes long, waits `holdMs` for the gateway to write some of
 * them into the guest, then goes away (the socket destroyed, the body never finished).
 */
async function cutOff(g: GatewayProcess, path: string, declared: number, sent: number, holdMs: number, query = ''): Promise<void> {
  const { port, hostname } = new URL(g.url);
  const req = http.request({
    host: hostname,
    port,
    method: 'PUT',
    path: fileUrl(path, query),
    agent: false,
    headers: { 'content-length': String(declared) },
  });
  req.on('error', () => {});
  req.write(randomBytes(sent));
  await new Promise((r) => setTimeout(r, holdMs));
  req.destroy();
}

/** The gateway's request log line for the last PUT of `path`. */
function requestLine(g: GatewayProcess, path: string): Record<string, any> | undefined {
  return g.logs
    .filter((l) => l.includes('"msg":"request"') && l.includes('"method":"PUT"'))
    .map((l) => JSON.parse(l) as Record<string, any>)
    .filter((l) => String(l.url).startsWith(fileUrl(path)))
    .at(-1);
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

describe('atomic replace (the default)', () => {
  it('replaces the file whole and keeps its owner and mode', async () => {
    const p = `${dir}/kept.conf`;
    await guestRun(dom, `echo old > ${p} && chown 1:2 ${p} && chmod 640 ${p}`);
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const r = await put(gw, p, body);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      atomic: true,
      created: false,
      keptOwner: true,
      keptMode: true,
      bytesWritten: body.length,
      mode: 'truncate',
    });
    expect(await guestSha256(dom, p)).toBe(sha256(body));
    expect(await modeAndOwner(p)).toBe('640 1:2');
    expect(await strays()).toEqual([]);
  });

  it('creates a missing file as qemu-ga would (mode 0666 less its umask)', async () => {
    const p = `${dir}/new.txt`;
    const r = await put(gw, p, Buffer.from('fresh\n'));
    expect(r.body).toMatchObject({ atomic: true, created: true, keptOwner: null, keptMode: null });
    expect(await guestRun(dom, `cat ${p}`)).toBe('fresh\n');
    expect(await strays()).toEqual([]);
  });

  it('leaves the old file byte-identical and no temporary file when a 6 MB upload is cut off half-way', async () => {
    const p = `${dir}/cut.bin`;
    const old = randomBytes(3 * 1000 * 1000);
    expect((await put(gw, p, old)).status).toBe(200);
    const fdsBefore = await agentFds(dom, dir);
    await cutOff(gw, p, 6 * 1000 * 1000, 3 * 1000 * 1000, 3000);
    await waitFor('the cut-off upload to be answered and cleaned up', async () => requestLine(gw, p)?.statusCode === 499, 60_000, 250);
    const line = requestLine(gw, p)!;
    // It was really half-way: bytes had gone into the temporary file, which is gone now.
    expect(line.effect).toMatchObject({ atomic: true });
    expect(line.effect.bytesWritten).toBeGreaterThan(0);
    expect(line.effect.leftBehind).toBeUndefined();
    expect(await guestSha256(dom, p)).toBe(sha256(old));
    expect(await strays()).toEqual([]);
    const fdsAfter = await agentFds(dom, dir);
    expect(fdsAfter.matching).toEqual([]);
    expect(fdsAfter.count).toBeLessThanOrEqual(fdsBefore.count);
  });

  it('leaves the old file byte-identical when a chunked body passes the upload limit', async () => {
    const p = `${dir}/limit.bin`;
    const old = randomBytes(1024 * 1024);
    expect((await put(gw, p, old)).status).toBe(200);
    const { port, hostname } = new URL(gw.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: hostname, port, method: 'PUT', path: fileUrl(p), agent: false, headers: { 'transfer-encoding': 'chunked' } },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', (err) => (/EPIPE|ECONNRESET/.test(err.message) ? undefined : reject(err)));
      let sent = 0;
      const pump = () => {
        while (sent <= MAX_UPLOAD + 1024 * 1024) {
          sent += 64 * 1024;
          if (!req.write(randomBytes(64 * 1024))) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    await waitFor('the over-limit upload to be cleaned up', async () => requestLine(gw, p)?.statusCode === 413, 30_000, 250);
    expect(requestLine(gw, p)!.effect.bytesWritten).toBeGreaterThan(0);
    expect(await guestSha256(dom, p)).toBe(sha256(old));
    expect(await strays()).toEqual([]);
  });

  it('refuses a symbolic link or a directory as target (409), changing nothing; ?atomic=false writes through the link', async () => {
    const real = `${dir}/real.txt`;
    await guestRun(dom, `echo real > ${real} && ln -sf real.txt ${dir}/link && mkdir -p ${dir}/sub`);
    const link = await put(gw, `${dir}/link`, Buffer.from('via link\n'));
    expect(link.status).toBe(409);
    expect(link.body.code).toBe('not_a_regular_file');
    const sub = await put(gw, `${dir}/sub`, Buffer.from('x'));
    expect(sub.status).toBe(409);
    expect(await guestRun(dom, `readlink ${dir}/link; cat ${real}; [ -d ${dir}/sub ] && echo dir`)).toBe('real.txt\nreal\ndir\n');
    expect(await strays()).toEqual([]);
    const through = await put(gw, `${dir}/link`, Buffer.from('via link\n'), '?atomic=false');
    expect(through.body).toMatchObject({ atomic: false, created: null });
    expect(await guestRun(dom, `readlink ${dir}/link; cat ${real}`)).toBe('real.txt\nvia link\n');
  });

  it('refuses a FIFO or a device as target (409), which stays what it was', async () => {
    await guestRun(dom, `mknod ${dir}/fifo p`);
    const r = await put(gw, `${dir}/fifo`, Buffer.from('x'));
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('not_a_regular_file');
    expect(r.body.detail).toContain('fifo');
    expect((await put(gw, '/dev/null', Buffer.from('x'))).status).toBe(409);
    expect((await guestRun(dom, `stat -c %F ${dir}/fifo /dev/null`)).trim().split('\n')).toEqual(['fifo', 'character special file']);
    expect(await strays()).toEqual([]);
  });

  it('refuses to finish when someone in the guest swapped the temporary file for a link, touching neither file', async () => {
    // The attack: a guest user who may write the directory replaces the temporary file with a link to a file
    // only root may change, hoping the gateway's root-run rename gives that file the target's owner and mode.
    const p = `${dir}/swap.conf`;
    const victim = `${dir}/victim`;
    await guestRun(dom, `echo old > ${p} && chown 1:2 ${p} && chmod 666 ${p} && echo secret > ${victim} && chmod 600 ${victim}`);
    const { port, hostname } = new URL(gw.url);
    const body = randomBytes(2 * 1024 * 1024);
    const answer = new Promise<Answer>((resolve, reject) => {
      const req = http.request(
        { host: hostname, port, method: 'PUT', path: fileUrl(p), agent: false, headers: { 'content-length': String(body.length) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }));
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, 1024 * 1024));
      void (async () => {
        await waitFor('the temporary file', async () => (await strays()).length === 1, 30_000, 250);
        const [temp] = await strays();
        await guestRun(dom, `mv ${dir}/${temp} ${dir}/moved-away && ln -s ${victim} ${dir}/${temp}`);
        req.end(body.subarray(1024 * 1024));
      })().catch(reject);
    });
    const r = await answer;
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('state_conflict');
    expect(await modeAndOwner(victim)).toBe('600 0:0');
    expect(await guestRun(dom, `cat ${victim} ${p}; [ -L ${p} ] || echo regular`)).toBe('secret\nold\nregular\n');
    expect(await strays()).toEqual([]);
  });

  it('answers 404 naming the directory when it does not exist, creating nothing', async () => {
    const r = await put(gw, `${dir}/missing/x.txt`, Buffer.from('x'));
    expect(r.status).toBe(404);
    expect(r.body.detail).toContain(`${dir}/missing/`);
  });
});

describe('in place', () => {
  it('?atomic=false cut off half-way keeps the bytes written so far, and says how many in the request log', async () => {
    const p = `${dir}/inplace.bin`;
    await cutOff(gw, p, 6 * 1000 * 1000, 3 * 1000 * 1000, 3000, '?atomic=false');
    await waitFor('the cut-off upload to be answered', async () => requestLine(gw, p)?.statusCode === 499, 60_000, 250);
    const written = requestLine(gw, p)!.effect.bytesWritten as number;
    expect(written).toBeGreaterThan(0);
    expect(gw.logs.some((l) => l.includes('in-place upload stopped part way') && l.includes(`"bytesWritten":${written}`))).toBe(true);
    expect(Number((await guestRun(dom, `stat -c %s ${p}`)).trim())).toBe(written);
  });

  it('refuses ?atomic=true with mode=append or offset (400)', async () => {
    expect((await put(gw, `${dir}/a.log`, Buffer.from('x'), '?mode=append&atomic=true')).status).toBe(400);
    expect((await put(gw, `${dir}/a.log`, Buffer.from('x'), '?offset=3&atomic=true')).status).toBe(400);
  });
});

describe('a gateway killed mid-upload', () => {
  it('leaves the target whole, and its next start closes the handle and removes the temporary file', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'qga-e2e-state-'));
    const p = `${dir}/killed.bin`;
    const old = randomBytes(512 * 1024);
    expect((await put(gw, p, old)).status).toBe(200);
    const first = await startGateway({ state: { dir: stateDir } });
    const { port, hostname } = new URL(first.url);
    const req = http.request({
      host: hostname,
      port,
      method: 'PUT',
      path: fileUrl(p),
      agent: false,
      headers: { 'content-length': String(6 * 1000 * 1000) },
    });
    req.on('error', () => {});
    req.write(randomBytes(2 * 1000 * 1000));
    await waitFor('the temporary file to appear', async () => (await strays()).length === 1, 30_000, 500);
    await first.stop('SIGKILL');
    req.destroy();
    expect(await strays()).toHaveLength(1);
    expect((await agentFds(dom, dir)).matching).toHaveLength(1);
    expect(await guestSha256(dom, p)).toBe(sha256(old));
    const second = await startGateway({ state: { dir: stateDir } });
    try {
      const removedLine = () =>
        second.logs.some((l) => l.includes('removed the temporary file of an upload an earlier run did not finish'));
      await waitFor(
        'the next start to remove the temporary file',
        async () => removedLine() && (await strays()).length === 0,
        60_000,
        1000,
      );
      expect(second.logs.some((l) => l.includes('removed the temporary file of an upload an earlier run did not finish'))).toBe(true);
      // The handle the killed gateway held is closed too: qemu-ga no longer holds the (deleted) file open.
      expect(second.logs.some((l) => l.includes('closed a guest file handle an earlier run left open'))).toBe(true);
      expect((await agentFds(dom, dir)).matching).toEqual([]);
      expect(await guestSha256(dom, p)).toBe(sha256(old));
    } finally {
      await second.stop();
    }
  });
});
