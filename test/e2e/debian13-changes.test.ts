// Changes to a real systemd guest (debian13: Debian 13, qemu-ga 10.0) through the built gateway, each checked in
// the guest itself and against the raw reply of the same agent (virsh): qgauser's password with the real chpasswd
// (/etc/shadow), its SSH keys (~qgauser/.ssh, owner and mode), the clock with hwclock, vCPU 1 offline and back,
// a freeze of the ext4 root with the deadline thaw, and fstrim of a virtio disk with discard. Everything is put
// back: the password locked again, no ~/.ssh, the clock the host's (RTC too), both vCPUs online, thawed.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from './support/gateway-process.js';
import { agentCommand, waitFor } from './support/guests.js';
import {
  DOM,
  DOMAIN_REF,
  SECOND,
  absBig,
  assertDebian13,
  call as callGateway,
  hostNs,
  onlineAllVcpusRaw,
  rawError,
  rawTimeNs,
  restoreClockRaw,
  sh,
  thawRaw,
} from './support/debian13.js';

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq e2e-debian13@qga-gateway';
const ECDSA =
  'ecdsa-sha2-nistp256 ' +
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAB12hz4B0+j6AzfyE' +
  'Yqk3L09I/pr4kYgX6B9RTxz/3WZRZ7Q/raGww7BvQ+G31npY0APZbHSpL0BjZquV5zeE4= e2e-debian13-2';

let gw: GatewayProcess;
const call = (method: string, path: string, body?: unknown) => callGateway(gw.url, method, `/domains/${DOM}${path}`, body);
const problem = (r: { status: number; type: string | null; body: any }, status: number, code: string) => {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.type).toMatch(/^application\/problem\+json/);
  expect(r.body.code).toBe(code);
};

/** qgauser's /etc/shadow entry, split at ':'. */
const shadow = async () => (await sh('getent shadow qgauser')).trim().split(':');
/** Whether `password` is the one the hash in /etc/shadow stands for (libcrypt through perl: yescrypt and SHA-crypt). */
const passwordMatches = async (password: string) =>
  (
    await sh(
      `h=$(getent shadow qgauser | cut -d: -f2); perl -e 'print crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? "yes" : "no"' '${password}' "$h"`,
    )
  ).trim() === 'yes';
const removeSshDir = () => sh('rm -rf /home/qgauser/.ssh');

beforeAll(async () => {
  await assertDebian13();
  gw = await startGateway();
});
afterAll(async () => {
  // Whatever failed: qgauser without a password and without keys, as the image has it.
  await sh("usermod -p '!' qgauser; rm -rf /home/qgauser/.ssh /var/tmp/qga-e2e-*").catch(() => {});
  await gw?.stop();
});

describe('qgauser password (the real chpasswd)', () => {
  afterEach(async () => {
    await sh("usermod -p '!' qgauser");
  });

  it('PUT a plain password: 204, /etc/shadow holds a new yescrypt hash of it, and no log line holds it', async () => {
    const before = await shadow();
    const secret = `e2e-${randomBytes(8).toString('hex')}`;
    const r = await call('PUT', '/users/qgauser/password', { password: secret });
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    const after = await shadow();
    expect(after[0]).toBe('qgauser');
    expect(after[1]).not.toBe(before[1]);
    // Debian 13's PAM hashes with yescrypt.
    expect(after[1]).toMatch(/^\$y\$/);
    expect(await passwordMatches(secret)).toBe(true);
    expect(await passwordMatches(`${secret}x`)).toBe(false);
    // The other fields are chpasswd's, not the gateway's: only the hash (and the change date) may change.
    expect([after[3], after[4], after[5]]).toEqual([before[3], before[4], before[5]]);
    await waitFor(
      'the request log line',
      async () => gw.logs.some((l) => l.includes('/users/qgauser/password') && l.includes('"statusCode":204')),
      10_000,
      50,
    );
    expect(gw.logs.join('\n')).not.toContain(secret);
  });

  it('PUT a crypted password: /etc/shadow holds exactly that hash', async () => {
    const hash = (await sh(`perl -e 'print crypt("e2e-crypted-pw", "\\$6\\$e2esalt\\$")'`)).trim();
    expect(hash).toMatch(/^\$6\$e2esalt\$/);
    const r = await call('PUT', '/users/qgauser/password', { password: hash, crypted: true });
    expect(r.status).toBe(204);
    expect((await shadow())[1]).toBe(hash);
    expect(await passwordMatches('e2e-crypted-pw')).toBe(true);
  });

  it('a user the guest lacks is 404 user_not_found, as the agent refuses it too', async () => {
    const before = await sh('sha256sum /etc/shadow');
    // The agent's own answer (virsh): chpasswd fails for the unknown user.
    expect(
      rawError({ execute: 'guest-set-user-password', arguments: { username: 'no-such-user-e2e', password: 'eA==', crypted: false } }),
    ).toMatch(/failed to set user password/);
    const r = await call('PUT', '/users/no-such-user-e2e/password', { password: 'x-e2e' });
    problem(r, 404, 'user_not_found');
    expect(await sh('sha256sum /etc/shadow')).toBe(before);
  });

  it('refuses bad input with 400 before the agent: control characters in the user name, a newline in the password', async () => {
    const before = await sh('sha256sum /etc/shadow');
    problem(await call('PUT', '/users/qga%01user/password', { password: 'x' }), 400, 'invalid_request');
    problem(await call('PUT', '/users/qgauser:x/password', { password: 'x' }), 400, 'invalid_request');
    problem(await call('PUT', '/users/qgauser/password', { password: 'x\nqgauser:y' }), 400, 'invalid_request');
    problem(await call('PUT', '/users/qgauser/password', { password: 'x', crypted: 'yes' }), 400, 'invalid_request');
    expect(await sh('sha256sum /etc/shadow')).toBe(before);
  });
});

describe("qgauser's SSH keys", () => {
  beforeAll(removeSshDir);
  afterAll(removeSshDir);
  const keys = '/users/qgauser/ssh-keys';
  const lines = (r: { body: { keys: { line: string }[] } }) => r.body.keys.map((k) => k.line).sort();
  /** The file in the guest, and what the agent itself lists (virsh). */
  const fileLines = async () => (await sh('cat /home/qgauser/.ssh/authorized_keys')).split('\n').filter(Boolean).sort();
  const rawLines = () =>
    (agentCommand(DOM, { execute: 'guest-ssh-get-authorized-keys', arguments: { username: 'qgauser' } }) as { keys: string[] }).keys.sort();

  it('adds, lists, removes and resets keys: ~qgauser/.ssh is qgauser 700, authorized_keys qgauser 600', async () => {
    const empty = await call('GET', keys);
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({ domain: DOMAIN_REF, user: 'qgauser', keys: [] });

    const added = await call('POST', keys, { keys: [ED25519, ECDSA] });
    expect(added.status).toBe(200);
    expect(added.body.keys).toHaveLength(2);
    expect(added.body.keys).toEqual(
      expect.arrayContaining([
        { line: ED25519, type: 'ssh-ed25519', comment: 'e2e-debian13@qga-gateway' },
        { line: ECDSA, type: 'ecdsa-sha2-nistp256', comment: 'e2e-debian13-2' },
      ]),
    );
    expect(await fileLines()).toEqual([ED25519, ECDSA].sort());
    expect(rawLines()).toEqual(lines(added));
    expect((await sh("stat -c '%U:%G %a' /home/qgauser/.ssh /home/qgauser/.ssh/authorized_keys")).trim().split('\n')).toEqual([
      'qgauser:qgauser 700',
      'qgauser:qgauser 600',
    ]);
    // GET answers what the agent lists.
    expect(lines(await call('GET', keys))).toEqual(rawLines());
    // Adding one already there does not duplicate it.
    expect((await call('POST', keys, { keys: [ED25519] })).body.keys).toHaveLength(2);
    expect(await fileLines()).toHaveLength(2);

    const removed = await call('DELETE', keys, { keys: [ED25519] });
    expect(removed.status).toBe(200);
    expect(lines(removed)).toEqual([ECDSA]);
    expect(await fileLines()).toEqual([ECDSA]);
    expect(rawLines()).toEqual([ECDSA]);

    const reset = await call('POST', keys, { keys: [ED25519], reset: true });
    expect(lines(reset)).toEqual([ED25519]);
    expect(await fileLines()).toEqual([ED25519]);
    expect((await sh("stat -c '%U:%G %a' /home/qgauser/.ssh/authorized_keys")).trim()).toBe('qgauser:qgauser 600');
    const cleared = await call('POST', keys, { keys: [], reset: true });
    expect(cleared.body.keys).toEqual([]);
    expect(await fileLines()).toEqual([]);
  });

  it('refuses bad key text, control characters and unknown users with 4xx problem+json; the file is unchanged', async () => {
    await call('POST', keys, { keys: [ECDSA], reset: true });
    const bad = [
      'ssh-ed25519 not-base64!',
      'ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAILs6z9QV1ve7cx4wYGtWe06S28D4feUoGDXKiZh6/yKq wrong-type',
      `${ED25519}\nssh-ed25519 AAAA injected`,
      `${ED25519}\r`,
      // A terminal escape and a bell in the comment: they would land in authorized_keys as they are.
      `${ED25519.replace('e2e-debian13@', 'e2e\u001b[31m\u0007@')}`,
      `command="/bin/sh" ${ED25519}`,
    ];
    for (const key of bad) {
      problem(await call('POST', keys, { keys: [key] }), 400, 'invalid_request');
      problem(await call('DELETE', keys, { keys: [key] }), 400, 'invalid_request');
    }
    problem(await call('POST', '/users/qga%1buser/ssh-keys', { keys: [ED25519] }), 400, 'invalid_request');
    const unknown = await call('GET', '/users/no-such-user-e2e/ssh-keys');
    problem(unknown, 404, 'user_not_found');
    // As the agent itself says it (virsh).
    expect(rawError({ execute: 'guest-ssh-get-authorized-keys', arguments: { username: 'no-such-user-e2e' } })).toContain(
      unknown.body.agentDesc,
    );
    problem(await call('POST', '/users/no-such-user-e2e/ssh-keys', { keys: [ED25519] }), 404, 'user_not_found');
    problem(await call('DELETE', '/users/no-such-user-e2e/ssh-keys', { keys: [ED25519] }), 404, 'user_not_found');
    expect(await fileLines()).toEqual([ECDSA]);
    expect(await sh('cat -v /home/qgauser/.ssh/authorized_keys')).not.toMatch(/\^\[|\^G/);
  });
});

describe('clock (guest-set-time: settimeofday, then hwclock)', () => {
  /** The guest's system clock and its RTC (hwclock --get), in seconds since the epoch, as the guest reads them. */
  async function guestClocks(): Promise<{ system: number; rtc: number; host: number }> {
    const [system, rtc] = (await sh('date +%s; date -d "$(hwclock --get)" +%s')).trim().split('\n').map(Number) as [number, number];
    return { system, rtc, host: Date.now() / 1000 };
  }
  afterAll(async () => {
    const host = await call('PUT', '/time', { source: 'host' });
    if (host.status !== 200) restoreClockRaw();
  });

  it('sets a given time (clock and RTC), reads the RTC back, then takes the host time; guest-get-time agrees', async () => {
    try {
      const target = hostNs() + 120n * SECOND;
      const given = await call('PUT', '/time', { time: { ns: target.toString() } });
      expect(given.status).toBe(200);
      expect(given.body).toMatchObject({ domain: DOMAIN_REF, source: 'given', requested: { ns: target.toString() } });
      expect(Date.parse(given.body.requested.iso)).toBe(Number(target / 1_000_000n));
      const readBack = BigInt(given.body.time.ns);
      expect(readBack - target).toBeGreaterThanOrEqual(0n);
      expect(readBack - target).toBeLessThan(15n * SECOND);

      // GET /time lies between two raw guest-get-time replies (it is rounded to the microsecond at most).
      const rawBefore = rawTimeNs();
      const now = await call('GET', '/time');
      const rawAfter = rawTimeNs();
      expect(now.status).toBe(200);
      expect(BigInt(now.body.time.ns)).toBeGreaterThanOrEqual(rawBefore - 1000n);
      expect(BigInt(now.body.time.ns)).toBeLessThanOrEqual(rawAfter + 1000n);
      expect(Date.parse(now.body.time.iso)).toBe(Number(BigInt(now.body.time.ns) / 1_000_000n));
      expect(absBig(rawBefore - hostNs() - 120n * SECOND)).toBeLessThan(15n * SECOND);
      // In the guest: the system clock and the RTC (the agent ran hwclock -w) are two minutes ahead.
      let c = await guestClocks();
      expect(Math.abs(c.system - c.host - 120)).toBeLessThan(15);
      expect(Math.abs(c.rtc - c.host - 120)).toBeLessThan(15);

      // The system clock five minutes behind by hand (the RTC untouched); from the RTC it is two minutes ahead again.
      await sh(`date -s @${Math.floor(Date.now() / 1000) - 300} >/dev/null`);
      expect(rawTimeNs() - hostNs()).toBeLessThan(-200n * SECOND);
      const rtc = await call('PUT', '/time', { source: 'hardware-clock' });
      expect(rtc.status).toBe(200);
      expect(rtc.body).toMatchObject({ source: 'hardware-clock', requested: null });
      expect(absBig(BigInt(rtc.body.time.ns) - hostNs() - 120n * SECOND)).toBeLessThan(15n * SECOND);
      expect(absBig(rawTimeNs() - hostNs() - 120n * SECOND)).toBeLessThan(15n * SECOND);

      const sent = hostNs();
      const host = await call('PUT', '/time', { source: 'host' });
      expect(host.status).toBe(200);
      expect(host.body.source).toBe('host');
      expect(absBig(BigInt(host.body.requested.ns) - sent)).toBeLessThan(5n * SECOND);
      expect(absBig(BigInt(host.body.time.ns) - hostNs())).toBeLessThan(5n * SECOND);
      expect(absBig(rawTimeNs() - hostNs())).toBeLessThan(5n * SECOND);
      c = await guestClocks();
      expect(Math.abs(c.system - c.host)).toBeLessThan(5);
      expect(Math.abs(c.rtc - c.host)).toBeLessThan(5);
    } finally {
      if ((await call('PUT', '/time', { source: 'host' })).status !== 200) restoreClockRaw();
    }
  });
});

describe('vCPUs', () => {
  afterEach(onlineAllVcpusRaw);
  const sysOnline = () => sh('cat /sys/devices/system/cpu/online').then((s) => s.trim());
  const rawVcpus = () =>
    (agentCommand(DOM, { execute: 'guest-get-vcpus' }) as { 'logical-id': number; online: boolean; 'can-offline'?: boolean }[])
      .map((v) => ({ id: v['logical-id'], online: v.online, canOffline: v['can-offline'] ?? null }))
      .sort((a, b) => a.id - b.id);

  it('PATCH takes vCPU 1 offline and back online: the agent and /sys/devices/system/cpu agree', async () => {
    const before = await call('GET', '/vcpus');
    expect(before.status).toBe(200);
    expect(before.body).toEqual({ domain: DOMAIN_REF, online: 2, total: 2, vcpus: rawVcpus() });
    expect(before.body.vcpus).toEqual([
      { id: 0, online: true, canOffline: false },
      { id: 1, online: true, canOffline: true },
    ]);
    expect(await sysOnline()).toBe('0-1');

    const off = await call('PATCH', '/vcpus', { vcpus: [{ id: 1, online: false }] });
    expect(off.status).toBe(200);
    expect(off.body).toEqual({ domain: DOMAIN_REF, requested: 1, applied: 1, complete: true, notApplied: [], vcpus: rawVcpus() });
    expect(off.body.vcpus[1]).toEqual({ id: 1, online: false, canOffline: true });
    expect((await sh('cat /sys/devices/system/cpu/cpu1/online')).trim()).toBe('0');
    expect(await sysOnline()).toBe('0');
    expect((await call('GET', '/vcpus')).body).toMatchObject({ online: 1, total: 2 });

    const on = await call('PATCH', '/vcpus', { vcpus: [{ id: 1, online: true }] });
    expect(on.status).toBe(200);
    expect(on.body).toMatchObject({ requested: 1, applied: 1, complete: true, notApplied: [] });
    expect(on.body.vcpus).toEqual(rawVcpus());
    expect((await sh('cat /sys/devices/system/cpu/cpu1/online')).trim()).toBe('1');
    expect(await sysOnline()).toBe('0-1');
  });

  it('vCPU 0 cannot go offline (409, as the agent refuses it too); every vCPU offline or an unknown one is 400', async () => {
    problem(await call('PATCH', '/vcpus', { vcpus: [{ id: 0, online: false }] }), 409, 'state_conflict');
    expect(rawError({ execute: 'guest-set-vcpus', arguments: { vcpus: [{ 'logical-id': 0, online: false }] } })).toMatch(
      /can't be offlined/,
    );
    problem(
      await call('PATCH', '/vcpus', {
        vcpus: [
          { id: 1, online: false },
          { id: 0, online: false },
        ],
      }),
      400,
      'invalid_request',
    );
    problem(await call('PATCH', '/vcpus', { vcpus: [{ id: 2, online: false }] }), 400, 'invalid_request');
    // Nothing changed.
    expect(await sysOnline()).toBe('0-1');
    expect((await call('GET', '/vcpus')).body).toMatchObject({ online: 2, total: 2 });
  });
});

describe('freeze of the ext4 root', () => {
  // Never leave the guest frozen: its journal, its logins and everyone's writes would hang.
  afterEach(thawRaw);
  const rawStatus = () => agentCommand(DOM, { execute: 'guest-fsfreeze-status' }) as string;

  /** A writer in the guest rewriting /var/tmp/qga-e2e-writer every 0.2 s; RESULT (tmpfs) gets its longest write in centiseconds. */
  async function startWriter(result: string): Promise<void> {
    const loop =
      'i=0; max=0; while [ $i -lt 40 ]; do a=$(cut -d" " -f1 /proc/uptime | tr -d .); echo $i > /var/tmp/qga-e2e-writer; ' +
      'b=$(cut -d" " -f1 /proc/uptime | tr -d .); d=$((b - a)); [ $d -gt $max ] && max=$d; [ $max -ge 100 ] && break; sleep 0.2; i=$((i + 1)); done; ' +
      `echo $max > ${result}; rm -f /var/tmp/qga-e2e-writer`;
    await sh(`rm -f ${result}; (${loop}) </dev/null >/dev/null 2>&1 &`);
  }

  it('POST freezes / for real (writes hang, other commands 409); the deadline thaws it with no client call', async () => {
    const result = '/tmp/qga-e2e-writer-result';
    await startWriter(result);
    const before = Date.now();
    const r = await call('POST', '/fsfreeze', { thawAfterMs: 4000 });
    expect(r.status).toBe(200);
    // The one freezable file system: the root (tmpfs and the virtual ones are not frozen).
    expect(r.body).toMatchObject({
      domain: DOMAIN_REF,
      frozenFileSystems: 1,
      status: 'frozen',
      heldByGateway: { mountpoints: null, blocking: true },
    });
    const autoThawAt = Date.parse(r.body.heldByGateway.autoThawAt);
    expect(autoThawAt).toBeGreaterThanOrEqual(before + 4000);
    expect(rawStatus()).toBe('frozen');
    expect((await call('GET', '/fsfreeze')).body).toMatchObject({
      status: 'frozen',
      heldByGateway: { autoThawAt: r.body.heldByGateway.autoThawAt },
    });
    problem(await call('GET', '/hostname'), 409, 'state_conflict');
    // The agent itself refuses what would write while frozen.
    expect(rawError({ execute: 'guest-exec', arguments: { path: '/bin/true' } })).toMatch(/disabled|frozen/);

    await waitFor('the gateway to thaw debian13 at the deadline', async () => rawStatus() === 'thawed', 30_000, 200);
    expect(Date.now()).toBeGreaterThanOrEqual(autoThawAt - 50);
    let out = '';
    const written = async () => {
      out = (await sh(`cat ${result} 2>/dev/null || true`)).trim();
      return out !== '';
    };
    await waitFor('the writer result', written, 60_000, 1000);
    // A write to the root was held by the freeze (about 4 s; at least 1 s on a slow host).
    expect(Number(out)).toBeGreaterThanOrEqual(100);
    await sh(`rm -f ${result}`);
    expect((await call('GET', '/fsfreeze')).body).toMatchObject({ status: 'thawed', heldByGateway: null });
    expect((await call('GET', '/hostname')).body.hostname).toBe(DOM);
    await sh('echo ok > /var/tmp/qga-e2e-after-thaw && rm /var/tmp/qga-e2e-after-thaw');
  });

  it('freeze-list ["/"], then DELETE thaws it before the deadline', async () => {
    const r = await call('POST', '/fsfreeze', { mountpoints: ['/'], thawAfterMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ frozenFileSystems: 1, status: 'frozen', heldByGateway: { mountpoints: ['/'], blocking: true } });
    expect(rawStatus()).toBe('frozen');
    const thawed = await call('DELETE', '/fsfreeze');
    expect(thawed.status).toBe(200);
    expect(thawed.body).toEqual({ domain: DOMAIN_REF, thawedFileSystems: 1, status: 'thawed' });
    expect(rawStatus()).toBe('thawed');
    expect((await call('GET', '/fsfreeze')).body).toEqual({ domain: DOMAIN_REF, status: 'thawed', heldByGateway: null });
  });
});

describe('fstrim of the virtio disk (discard=unmap)', () => {
  const discardSectors = async () => Number((await sh('cat /sys/block/vda/stat')).trim().split(/\s+/)[13]);

  it('trims the blocks of a deleted 64 MiB file: the bytes reach the disk as discards; the answer is guest-fstrim field by field', async () => {
    await sh('dd if=/dev/zero of=/var/tmp/qga-e2e-trim bs=1M count=64 conv=fsync status=none && rm /var/tmp/qga-e2e-trim && sync', 120_000);
    const discardBefore = await discardSectors();
    const r = await call('POST', '/fstrim', { minimumBytes: 0 });
    const discardAfter = await discardSectors();
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ domain: DOMAIN_REF, paths: [{ path: '/', trimmedBytes: expect.any(Number), minimumBytes: 0, error: null }] });
    expect(r.body.paths[0].trimmedBytes).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    // What ext4 trimmed went to the disk as discard requests (others may add some meanwhile).
    expect((discardAfter - discardBefore) * 512).toBeGreaterThanOrEqual(r.body.paths[0].trimmedBytes);

    // The raw reply has the same paths and members (ext4 has nothing left to trim now, or little).
    const raw = agentCommand(DOM, { execute: 'guest-fstrim', arguments: { minimum: 0 } }) as {
      paths: { path: string; trimmed?: number; minimum?: number; error?: string }[];
    };
    const again = await call('POST', '/fstrim', { minimumBytes: 0 });
    expect(again.body.paths.map((p: { path: string }) => p.path)).toEqual(raw.paths.map((p) => p.path));
    again.body.paths.forEach((p: any, i: number) => {
      expect(p).toEqual({
        path: raw.paths[i]!.path,
        trimmedBytes: expect.any(Number),
        minimumBytes: raw.paths[i]!.minimum,
        error: raw.paths[i]!.error ?? null,
      });
      expect(Object.keys(raw.paths[i]!).sort()).toEqual(['minimum', 'path', 'trimmed']);
    });
  });

  it("passes the agent's per-path error on: a minimum larger than an ext4 block group is refused by the kernel", async () => {
    const minimum = 1024 * 1024 * 1024;
    const raw = agentCommand(DOM, { execute: 'guest-fstrim', arguments: { minimum } }) as { paths: { path: string; error?: string }[] };
    expect(raw.paths).toEqual([{ path: '/', error: expect.stringMatching(/Invalid argument/) }]);
    const r = await call('POST', '/fstrim', { minimumBytes: minimum });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      domain: DOMAIN_REF,
      paths: [{ path: '/', trimmedBytes: null, minimumBytes: null, error: raw.paths[0]!.error }],
    });
  });
});
