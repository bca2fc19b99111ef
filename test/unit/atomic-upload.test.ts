// The atomic upload's state machine against the fake libvirtd's guest (test/support/fake-guest-files.ts): every
// way an upload can fail (client gone, 413, agent error, deadline, gateway shutdown, the rename refused or
// failing, the clean-up impossible) leaves the target as it was, no temporary file and no open handle, and
// the request log and audit line say what happened. test/e2e/atomic-upload.test.ts runs the same against a
// real qemu-ga and busybox.
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { powershellLiteral } from '../../src/agent/files/replace-commands.js';
import { TEMP_MARKER, tempPathFor, uploadJournal } from '../../src/agent/files/upload-temp.js';
import { FakeGuestFiles } from '../support/fake-guest-files.js';
import { waitFor, type FakeLibvirtd } from '../support/fake-libvirtd.js';
import { putChunked, startUpload } from '../support/http-upload.js';
import { buildOncePerTest } from '../support/harness.js';
import type { TestGateway } from '../support/test-gateway.js';
import { fixtureErrorFor } from '../support/qga-fixtures.js';

const CHUNK = 64 * 1024;
const OLD = Buffer.from('the old content\n');
let fake: FakeLibvirtd | null = null;
let gw: TestGateway | null = null;
let guest: FakeGuestFiles;

/** The test's gateway; a second call within one test starts another against the same fake libvirtd. */
async function setup(overrides: { files?: Record<string, unknown>; stateDir?: string } = {}) {
  const h = await buildOncePerTest({ domains: ['web1'], gateway: false });
  fake = h.fake;
  fake.agentHandler = guest.handler;
  gw = await h.startGateway({
    files: { chunkBytes: CHUNK, writeChunkBytes: CHUNK, ...overrides.files },
    agent: { abandonGraceMs: 200 },
    ...(overrides.stateDir ? { state: { dir: overrides.stateDir } } : {}),
  });
  return gw;
}

function fresh(): void {
  guest = new FakeGuestFiles();
  guest.files.set('/etc/app.conf', OLD);
}

async function listen(): Promise<number> {
  await gw!.app.listen({ port: 0, host: '127.0.0.1' });
  return (gw!.app.server.address() as AddressInfo).port;
}

const temps = () => [...guest.files.keys()].filter((p) => p.includes(TEMP_MARKER));
const programs = () => guest.programs.map((p) => (p.path === '/bin/sh' ? 'replace' : p.path === '/bin/rm' ? 'rm' : p.path));
const put = (url: string, payload: Buffer | string) => gw!.app.inject({ method: 'PUT', url, payload });
const requestLines = () => gw!.logs.filter((l) => l.msg === 'request' && l.method === 'PUT');

/** Every way out: the target as it was, nothing of the gateway's left in the guest. */
function expectUntouched(): void {
  expect(guest.files.get('/etc/app.conf')).toEqual(OLD);
  expect(temps()).toEqual([]);
  expect(guest.leaked).toEqual([]);
}

describe('the temporary file', () => {
  it("is hidden beside its target, marked as the gateway's, and unguessable", () => {
    expect(tempPathFor('/etc/app.conf', () => 'abc')).toBe('/etc/.app.conf.qga-gateway-abc.tmp');
    expect(tempPathFor('C:\\data\\report.txt', () => 'abc')).toBe('C:\\data\\.report.txt.qga-gateway-abc.tmp');
    expect(tempPathFor('C:/data/report.txt', () => 'abc')).toBe('C:/data/.report.txt.qga-gateway-abc.tmp');
    const a = tempPathFor('/x');
    expect(a).toMatch(/^\/\.x\.qga-gateway-[0-9a-f]{24}\.tmp$/);
    expect(tempPathFor('/x')).not.toBe(a);
  });

  it('keeps its name under 255 bytes for the longest target name, without splitting a character', () => {
    const name = 'é'.repeat(127); // 254 bytes
    const temp = tempPathFor(`/d/${name}`);
    const base = temp.slice(3);
    expect(Buffer.byteLength(base)).toBeLessThanOrEqual(255);
    expect(base).not.toContain('\ufffd');
  });
});

describe('PUT: atomic replace', () => {
  it('writes the temporary file, renames it over the target, and reports what it kept', async () => {
    fresh();
    await setup();
    const res = await put('/domains/web1/files/etc/app.conf', 'new content\n');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ mode: 'truncate', atomic: true, created: false, keptOwner: true, keptMode: true, bytesWritten: 12 });
    expect(guest.files.get('/etc/app.conf')!.toString()).toBe('new content\n');
    expect(temps()).toEqual([]);
    expect(programs()).toEqual(['replace']);
    // The rename runs a fixed program with the paths as separate arguments, never in its script.
    const [prog] = guest.programs;
    expect(prog!.args[0]).toBe('-c');
    expect(prog!.args[1]).not.toContain('/etc/app.conf');
    expect(prog!.args.slice(2)).toEqual([
      'qga-gateway-replace',
      expect.stringMatching(/^\/etc\/\.app\.conf\.qga-gateway-[0-9a-f]{24}\.tmp$/),
      '/etc/app.conf',
      '12',
    ]);
    expect(guest.leaked).toEqual([]);
    expect(gw!.audit.at(-1)).toMatchObject({ event: 'change', status: 200, effect: { atomic: true, bytesWritten: 12 } });
  });

  it('creates a missing target the same way', async () => {
    fresh();
    await setup();
    const res = await put('/domains/web1/files/srv/new.txt', 'x');
    expect(res.json()).toMatchObject({ atomic: true, created: true, keptOwner: null, keptMode: null });
    expect(guest.files.get('/srv/new.txt')!.toString()).toBe('x');
    expect(temps()).toEqual([]);
  });

  it('leaves the target whole when the client goes away half-way, and still writes the request log and audit lines', async () => {
    fresh();
    await setup();
    const port = await listen();
    const req = startUpload(port, '/domains/web1/files/etc/app.conf', 10 * CHUNK, Buffer.alloc(3 * CHUNK, 2));
    await waitFor(() => (guest.counts.get('guest-file-write') ?? 0) >= 2, 3000, 'writes to start');
    req.destroy();
    await waitFor(() => requestLines().length === 1, 5000, 'the request line');
    expectUntouched();
    expect(programs()).toEqual(['rm']);
    expect(requestLines()[0]).toMatchObject({ statusCode: 499, clientGone: true, effect: { atomic: true } });
    expect((requestLines()[0]!.effect as { bytesWritten: number }).bytesWritten).toBeGreaterThanOrEqual(2 * CHUNK);
    await waitFor(() => gw!.audit.length === 1, 3000, 'the audit line');
    expect(gw!.audit[0]).toMatchObject({
      event: 'change',
      outcome: 'failed',
      status: 499,
      path: '/etc/app.conf',
      effect: { atomic: true },
    });
    expect(gw!.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
  });

  it('leaves the target whole when a chunked body passes the limit (413)', async () => {
    fresh();
    await setup({ files: { maxUploadBytes: 2 * CHUNK + 10 } });
    const port = await listen();
    const { status } = await putChunked(port, '/domains/web1/files/etc/app.conf', 4 * CHUNK);
    expect(status).toBe(413);
    await waitFor(() => requestLines().length === 1, 3000, 'the request line');
    expectUntouched();
    expect(programs()).toEqual(['rm']);
  });

  it('leaves the target whole when the agent fails a write (502)', async () => {
    fresh();
    await setup();
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-write'
        ? { error: { class: 'GenericError', desc: 'failed to write to file: No space left on device' } }
        : undefined;
    const res = await put('/domains/web1/files/etc/app.conf', Buffer.alloc(100));
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({ code: 'agent_error', bytesWritten: 0 });
    expect(res.json().detail).toContain('/etc/app.conf is unchanged');
    expectUntouched();
  });

  it('leaves the target whole when a write passes its deadline (504)', async () => {
    fresh();
    await setup({ files: { chunkTimeoutMs: 300 } });
    let writes = 0;
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-write' && writes++ === 1 ? new Promise((r) => setTimeout(() => r(undefined), 1500)) : undefined;
    const res = await put('/domains/web1/files/etc/app.conf', Buffer.alloc(3 * CHUNK));
    expect(res.statusCode).toBe(504);
    await waitFor(() => guest.leaked.length === 0 && temps().length === 0, 5000, 'the clean-up');
    expectUntouched();
  });

  it('leaves the target whole when the gateway shuts down mid-upload, removing the temporary file before it stops', async () => {
    fresh();
    await setup();
    const port = await listen();
    const req = startUpload(port, '/domains/web1/files/etc/app.conf', 10 * CHUNK, Buffer.alloc(3 * CHUNK, 2));
    await waitFor(() => (guest.counts.get('guest-file-write') ?? 0) >= 2, 3000, 'writes to start');
    await gw!.close();
    gw = null;
    req.destroy();
    expectUntouched();
    expect(programs()).toEqual(['rm']);
  });

  it('refuses a symbolic link or a directory as target (409), removing the temporary file', async () => {
    fresh();
    guest.symlinks.add('/etc/link.conf');
    guest.directories.add('/etc/conf.d');
    await setup();
    const link = await put('/domains/web1/files/etc/link.conf', 'x');
    expect(link.statusCode).toBe(409);
    expect(link.json()).toMatchObject({ code: 'not_a_regular_file' });
    expect(link.json().detail).toContain('atomic=false');
    const dir = await put('/domains/web1/files/etc/conf.d', 'x');
    expect(dir.statusCode).toBe(409);
    expect(temps()).toEqual([]);
    expect(guest.files.has('/etc/link.conf')).toBe(false);
  });

  it('answers 409 when someone in the guest swapped the temporary file before the rename, the target unchanged', async () => {
    fresh();
    await setup();
    guest.intercept = (cmd) => {
      const args = (cmd.arguments as { arg?: string[] } | undefined)?.arg ?? [];
      // Replaced by other content (a link to another file, in a real guest): the script exits 6.
      if (cmd.execute === 'guest-exec' && args[2] === 'qga-gateway-replace') guest.files.set(args[3]!, Buffer.from('planted'));
      return undefined;
    };
    const res = await put('/domains/web1/files/etc/app.conf', 'new');
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'state_conflict' });
    expect(res.json().detail).toMatch(/was replaced or changed by someone in the guest/);
    expectUntouched();
  });

  it('answers 502 when the rename itself fails in the guest, the target unchanged', async () => {
    fresh();
    await setup();
    guest.intercept = (cmd) => {
      const a = (cmd.arguments ?? {}) as { arg?: string[]; pid?: number };
      if (cmd.execute === 'guest-exec' && a.arg?.[2] === 'qga-gateway-replace') {
        guest.files.delete(a.arg[3]!);
        return { return: { pid: 99 } };
      }
      if (cmd.execute === 'guest-exec-status' && a.pid === 99)
        return {
          return: { exited: true, exitcode: 5, 'err-data': Buffer.from("mv: can't rename: Read-only file system\n").toString('base64') },
        };
      return undefined;
    };
    const res = await put('/domains/web1/files/etc/app.conf', 'new');
    expect(res.statusCode).toBe(502);
    expect(res.json().detail).toMatch(/exit 5\): mv: can't rename: Read-only file system; the target is unchanged/);
    expectUntouched();
  });

  it('removes the temporary file when the client leaves while it is being opened (the open went through)', async () => {
    fresh();
    await setup();
    const port = await listen();
    let release: () => void = () => {};
    guest.intercept = (cmd) => (cmd.execute === 'guest-file-open' ? new Promise((r) => (release = () => r(undefined))) : undefined);
    const req = startUpload(port, '/domains/web1/files/etc/app.conf', 100, 'x');
    await waitFor(() => (guest.counts.get('guest-file-open') ?? 0) === 1, 3000, 'the open');
    req.destroy();
    await new Promise((r) => setTimeout(r, 50));
    release();
    await waitFor(() => requestLines().length === 1, 5000, 'the request line');
    expect(requestLines()[0]).toMatchObject({ statusCode: 499 });
    expectUntouched();
    expect(programs()).toEqual(['rm']);
  });

  it('refuses (501) before writing anything when guest-exec is disabled, and writes in place with ?atomic=false', async () => {
    fresh();
    guest.execEnabled = false;
    await setup();
    const res = await put('/domains/web1/files/etc/app.conf', 'new');
    expect(res.statusCode).toBe(501);
    expect(res.json()).toMatchObject({ code: 'atomic_replace_unavailable', command: 'guest-exec' });
    expect(res.json().detail).toContain('?atomic=false');
    expect(guest.opened).toEqual([]);
    expectUntouched();
    const inPlace = await put('/domains/web1/files/etc/app.conf?atomic=false', 'new');
    expect(inPlace.json()).toMatchObject({ atomic: false, created: null, keptMode: null });
    expect(guest.files.get('/etc/app.conf')!.toString()).toBe('new');
    expect(guest.programs).toEqual([]);
  });

  it('answers 501 with the hint when the guest has no /bin/sh to rename with, the target unchanged', async () => {
    fresh();
    await setup();
    // qemu-ga 7.2's recorded wording (10.0's is the same without the "Guest agent command failed" wrapping).
    const missing = (path: string) => fixtureErrorFor('7.2', 'host.guest-exec.missing-program', { '/nonexistent/program': path });
    guest.intercept = (cmd) => {
      const a = (cmd.arguments ?? {}) as { path?: string };
      return cmd.execute === 'guest-exec' && a.path === '/bin/sh' ? missing('/bin/sh') : undefined;
    };
    const res = await put('/domains/web1/files/etc/app.conf', 'new');
    expect(res.statusCode).toBe(501);
    expect(res.json()).toMatchObject({ code: 'atomic_replace_unavailable' });
    expect(res.json().detail).toContain('/bin/sh');
    expect(res.json().detail).toContain('?atomic=false');
    expectUntouched();
  });

  it('says which temporary file it could not remove (problem, log, audit), keeps its record, and the next start removes it', async () => {
    fresh();
    const stateDir = mkdtempSync(join(tmpdir(), 'qga-state-'));
    await setup({ stateDir });
    let rmWorks = false;
    guest.intercept = (cmd) => {
      if (cmd.execute === 'guest-file-write')
        return { error: { class: 'GenericError', desc: 'failed to write to file: Input/output error' } };
      const args = (cmd.arguments as { path?: string } | undefined)?.path;
      if (cmd.execute === 'guest-exec' && args === '/bin/rm' && !rmWorks)
        return { libvirtError: { code: 86, message: 'Guest agent is not responding: Guest agent not available for now' } };
      return undefined;
    };
    const res = await put('/domains/web1/files/etc/app.conf', 'new');
    expect(res.statusCode).toBe(502);
    const left = res.json().leftBehind as string;
    expect(left).toMatch(/^\/etc\/\.app\.conf\.qga-gateway-/);
    expect(res.json().detail).toContain(`the temporary file ${left} could not be removed`);
    expect(guest.files.has(left)).toBe(true);
    expect(
      gw!.logs.some(
        (l) => l.msg === 'upload failed and its temporary file could not be removed; the next start tries again' && l.temp === left,
      ),
    ).toBe(true);
    expect(gw!.audit.at(-1)).toMatchObject({ effect: { leftBehind: left } });
    expect(readdirSync(join(stateDir, 'uploads')).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    await gw!.close();

    rmWorks = true;
    await setup({ stateDir });
    await gw!.gateway.recovered;
    expect(guest.files.has(left)).toBe(false);
    expect(guest.files.get('/etc/app.conf')).toEqual(OLD);
    expect(readdirSync(join(stateDir, 'uploads')).filter((f) => f.endsWith('.json'))).toEqual([]);
  });

  it('removes nothing at start-up but its own temporary files, whatever a record in state.dir says', async () => {
    fresh();
    const stateDir = mkdtempSync(join(tmpdir(), 'qga-state-'));
    const forged = {
      host: 'local',
      uuid: '00000000-0000-4000-8000-000000000000',
      name: 'web1',
      domId: 1,
      os: 'posix' as const,
      target: '/etc/app.conf',
      startedAt: new Date().toISOString(),
    };
    await uploadJournal(stateDir).put({ ...forged, id: 'a', temp: '/etc/app.conf' });
    await uploadJournal(stateDir).put({ ...forged, id: 'b', temp: '/etc/.app.conf.qga-gateway-0123456789abcdef01234567.tmp; rm -rf /' });
    await setup({ stateDir });
    await gw!.gateway.recovered;
    expect(guest.programs).toEqual([]);
    expect(guest.files.get('/etc/app.conf')).toEqual(OLD);
    const setAside = gw!.logs.filter((l) => l.msg === 'upload journal: unreadable record set aside');
    expect(setAside).toHaveLength(2);
    expect(String(setAside[0]!.reason)).toContain('not a name the gateway makes');
    expect(readdirSync(join(stateDir, 'uploads')).filter((f) => f.endsWith('.json'))).toEqual([]);
  });

  it('goes on, with a warning, when state.dir cannot be written', async () => {
    fresh();
    const blocked = join(mkdtempSync(join(tmpdir(), 'qga-state-')), 'file');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(blocked, 'in the way');
    await setup({ stateDir: blocked });
    expect((await put('/domains/web1/files/etc/app.conf', 'a')).statusCode).toBe(200);
    expect((await put('/domains/web1/files/etc/app.conf', 'b')).statusCode).toBe(200);
    expect(guest.files.get('/etc/app.conf')!.toString()).toBe('b');
    expect(gw!.logs.filter((l) => String(l.msg).startsWith('uploads: state.dir cannot be written'))).toHaveLength(1);
    expect(existsSync(join(blocked, 'uploads'))).toBe(false);
  });

  it('renames with PowerShell on a Windows guest, the paths as quoted literals in an encoded script', async () => {
    fresh();
    guest.osId = 'mswindows';
    guest.files.set("C:/data/it's.txt", OLD);
    await setup();
    let script = '';
    guest.intercept = (cmd) => {
      const a = (cmd.arguments ?? {}) as { path?: string; arg?: string[]; pid?: number };
      if (cmd.execute === 'guest-exec' && a.path?.endsWith('powershell.exe')) {
        script = Buffer.from(a.arg!.at(-1)!, 'base64').toString('utf16le');
        const temp = [...guest.files.keys()].find((p) => p.includes(TEMP_MARKER))!;
        guest.files.set("C:/data/it's.txt", guest.files.get(temp)!);
        guest.files.delete(temp);
        return { return: { pid: 77 } };
      }
      if (cmd.execute === 'guest-exec-status' && a.pid === 77)
        return { return: { exited: true, exitcode: 0, 'out-data': Buffer.from('owner\r\nmode\r\n').toString('base64') } };
      return undefined;
    };
    const res = await put("/domains/web1/files/C:/data/it's.txt", 'win');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ atomic: true, keptOwner: true, keptMode: true });
    expect(script).toContain(`$f = ${powershellLiteral("C:/data/it's.txt")}`);
    expect(script).toContain("'C:/data/it''s.txt'");
    expect(script).toContain('[IO.File]::Replace($t, $f, $null)');
    expect(guest.files.get("C:/data/it's.txt")!.toString()).toBe('win');
  });
});

describe('PUT: in place', () => {
  it('keeps what an interrupted append wrote, and says how much in the log, the audit and the problem', async () => {
    fresh();
    await setup();
    let writes = 0;
    guest.intercept = (cmd) =>
      cmd.execute === 'guest-file-write' && writes++ === 2
        ? { error: { class: 'GenericError', desc: 'failed to write to file: No space left on device' } }
        : undefined;
    const res = await put('/domains/web1/files/etc/app.conf?mode=append', Buffer.alloc(4 * CHUNK, 0x61));
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({ bytesWritten: 2 * CHUNK });
    expect(res.json().detail).toContain(`the first ${2 * CHUNK} bytes of the upload are in /etc/app.conf`);
    expect(guest.files.get('/etc/app.conf')!.length).toBe(OLD.length + 2 * CHUNK);
    expect(
      gw!.logs.some(
        (l) => l.msg === 'in-place upload stopped part way: the bytes written so far stay in the file' && l.bytesWritten === 2 * CHUNK,
      ),
    ).toBe(true);
    expect(gw!.audit.at(-1)).toMatchObject({ effect: { atomic: false, bytesWritten: 2 * CHUNK } });
    expect(guest.programs).toEqual([]);
    expect(guest.leaked).toEqual([]);
  });

  it('refuses ?atomic=true with append or offset, and anything but true/false', async () => {
    fresh();
    await setup();
    expect((await put('/domains/web1/files/etc/app.conf?mode=append&atomic=true', 'x')).statusCode).toBe(400);
    expect((await put('/domains/web1/files/etc/app.conf?offset=1&atomic=true', 'x')).statusCode).toBe(400);
    expect((await put('/domains/web1/files/etc/app.conf?atomic=yes', 'x')).statusCode).toBe(400);
    expect(guest.opened).toEqual([]);
  });
});
