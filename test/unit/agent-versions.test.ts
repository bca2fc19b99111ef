// The replies of real agents, qemu-ga 7.2.22 and 10.0.13 (test/fixtures/qga/, recorded from the VMs through
// libvirt and from qemu-ga on the host), read the way the gateway reads them: every one through its command's
// reply schema, 64-bit integers exact, and every error wording through the mapping that acts on it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { guestSshGetAuthorizedKeys } from '../../src/agent/commands/accounts.js';
import { agentClassFromDesc } from '../../src/domains/backend-errors.js';
import { AGENT_ERROR_TEXT, isAgentError, isCommandDisabled } from '../../src/agent/core/agent-errors.js';
import { parseAgentJson } from '../../src/agent/transports/agent-json.js';
import { guestInfo, guestPing } from '../../src/agent/commands/info.js';
import { guestNetworkGetInterfaces } from '../../src/agent/commands/network.js';
import type { AgentCommand } from '../../src/agent/commands/define.js';
import { agentError, mapLibvirtError } from '../../src/domains/backend-errors.js';
import { guestExec, guestExecStatus } from '../../src/agent/commands/exec.js';
import {
  guestFileClose,
  guestFileFlush,
  guestFileOpen,
  guestFileRead,
  guestFileSeek,
  guestFileWrite,
} from '../../src/agent/commands/files.js';
import { guestFsfreezeStatus } from '../../src/agent/commands/fs.js';
import * as facts from '../../src/agent/commands/index.js';
import * as settings from '../../src/agent/commands/index.js';
import { kernelU32 } from '../../src/agent/commands/reply-integers.js';
import { LibvirtError } from '../../src/libvirt/errors.js';
import type { AgentHandler } from '../support/fake-libvirtd.js';
import {
  FIXTURE_DIR,
  FIXTURE_VERSIONS,
  fixtureError,
  fixtureReply,
  fixtureText,
  libvirtErrorText,
  type FixtureVersion,
} from '../support/qga-fixtures.js';
import { build } from '../support/harness.js';
import type { GatewayOverrides, TestGateway } from '../support/test-gateway.js';

interface IndexEntry {
  file: string;
  agentVersion: string;
  source: string;
  command: { execute: string; arguments?: Record<string, unknown> };
}
const INDEX = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'index.json'), 'utf8')) as IndexEntry[];

const TYPED: AgentCommand<unknown, unknown>[] = [
  guestInfo,
  guestPing,
  guestNetworkGetInterfaces,
  facts.guestGetOsinfo,
  facts.guestGetHostName,
  facts.guestGetTimezone,
  facts.guestGetUsers,
  facts.guestGetFsinfo,
  facts.guestGetDisks,
  facts.guestGetDiskstats,
  facts.guestGetCpustats,
  facts.guestGetLoad,
  facts.guestNetworkGetRoute,
  settings.guestGetTime,
  settings.guestGetVcpus,
  settings.guestGetMemoryBlocks,
  settings.guestGetMemoryBlockInfo,
  guestFsfreezeStatus,
  guestFileOpen,
  guestFileRead,
  guestFileWrite,
  guestFileSeek,
  guestFileFlush,
  guestFileClose,
  guestExec,
  guestExecStatus,
  guestSshGetAuthorizedKeys,
] as AgentCommand<unknown, unknown>[];
const byName = new Map(TYPED.map((c) => [c.execute, c]));

const replies = INDEX.filter((e) => e.file.endsWith('.json'));

describe('recorded agent replies', () => {
  it('cover both versions, from the VMs and from the host', () => {
    for (const v of ['7.2.22', '10.0.13']) {
      expect(INDEX.some((e) => e.agentVersion === v && e.source.startsWith('VM'))).toBe(true);
      expect(INDEX.some((e) => e.agentVersion === v && e.source.startsWith('qemu-ga on the host'))).toBe(true);
    }
  });

  it.each(replies.map((e) => [e.file, e] as const))(
    '%s: a reply the gateway reads (its schema, or an agent error with a class)',
    (file, entry) => {
      const reply = parseAgentJson(readFileSync(path.join(FIXTURE_DIR, file), 'utf8')) as {
        return?: unknown;
        error?: { class: string; desc: string };
      };
      if (reply.error) {
        expect(['GenericError', 'CommandNotFound']).toContain(reply.error.class);
        expect(typeof reply.error.desc).toBe('string');
        return;
      }
      const cmd = byName.get(entry.command.execute);
      if (!cmd) throw new Error(`no typed command for ${entry.command.execute}`);
      const parsed = cmd.reply.safeParse(reply.return);
      expect(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues)).toBe(true);
    },
  );
});

describe('64-bit integers from the agent, exact', () => {
  it("qemu-ga 10.0's IPv6 route flags: 18446744071564165121 (0xffffffff80200001), the kernel's 0x80200001", () => {
    const text = fixtureText('10.0', 'guest-network-get-route');
    expect(text).toContain('"flags":18446744071564165121');
    // What JSON.parse would have made of it: another number.
    expect(BigInt((JSON.parse(text) as { return: { flags: number }[] }).return[7]!.flags)).not.toBe(18446744071564165121n);
    const routes = facts.guestNetworkGetRoute.reply.parse((parseAgentJson(text) as { return: unknown }).return);
    const lo = routes.find((r) => r.iface === 'lo' && r.destination === '::1')!;
    expect(lo.flags).toBe(18446744071564165121n);
    expect(kernelU32(lo.flags!)).toBe(0x80200001);
    const unreachable = routes.find((r) => r.iface === 'lo' && r.destination === '::')!;
    expect(unreachable.metric).toBe(-1);
    expect(kernelU32(unreachable.metric)).toBe(4294967295);
  });

  it.each(FIXTURE_VERSIONS)('qemu-ga %s: a seek to the end of an ext4 directory answers 2^63 - 1, exactly', (version) => {
    const reply = parseAgentJson(fixtureText(version, 'host.guest-file-seek.directory-end')) as { return: unknown };
    expect(guestFileSeek.reply.parse(reply.return)).toEqual({ eof: false, position: 9223372036854775807n });
  });

  it.each([
    ['7.2', 'guest-get-time'],
    ['10.0', 'guest-get-time'],
    ['7.2', 'host.guest-get-time'],
    ['10.0', 'host.guest-get-time'],
  ] as const)('qemu-ga %s %s: the nanoseconds to the digit (whole microseconds on Linux)', (version, name) => {
    const text = fixtureText(version, name);
    const digits = /"return":\s*(\d+)/.exec(text)![1]!;
    const ns = settings.guestGetTime.reply.parse((parseAgentJson(text) as { return: unknown }).return);
    expect(ns).toBe(BigInt(digits));
    expect(BigInt(ns) % 1000n).toBe(0n);
  });

  it('a counter past 2^53 (a busy interface over months) stays exact: the recorded reply with its rx-bytes raised', () => {
    const text = fixtureText('10.0', 'guest-network-get-interfaces').replace('"rx-bytes":0', '"rx-bytes":18446744073709551615');
    const nics = guestNetworkGetInterfaces.reply.parse((parseAgentJson(text) as { return: unknown }).return);
    expect(nics[0]!.statistics!['rx-bytes']).toBe(18446744073709551615n);
    expect(nics[0]!.statistics!['tx-bytes']).toBe(0);
  });
});

describe('error wording of every version (recorded from qemu-ga on the host unless said)', () => {
  /** The same error the two ways it reaches the gateway: libvirt's folded message (class lost), and the agent's socket. */
  const bothPaths = (execute: string, e: { class: string; desc: string }) => [
    mapLibvirtError(
      new LibvirtError({ code: 1, domain: 10, message: `internal error: unable to execute QEMU agent command '${execute}': ${e.desc}` }),
    ),
    agentError(execute, e.desc, e.class),
  ];

  it.each([
    ['unknownPid', 'guest-exec-status', 'host.guest-exec-status.unknown-pid'],
    ['unknownPid', 'guest-exec-status', 'host.guest-exec-status.reaped'],
    ['spawnFailed', 'guest-exec', 'host.guest-exec.missing-program'],
    ['spawnFailed', 'guest-exec', 'host.guest-exec.not-executable'],
    ['userNotFound', 'guest-ssh-get-authorized-keys', 'host.guest-ssh-get-authorized-keys.unknown-user'],
    ['noAuthorizedKeysFile', 'guest-ssh-get-authorized-keys', 'host.guest-ssh-get-authorized-keys.no-file'],
    ['fileNotFound', 'guest-file-open', 'host.guest-file-open.missing'],
    ['fileNotFound', 'guest-file-open', 'host.guest-file-open.under-a-file'],
    ['fileIsDirectory', 'guest-file-read', 'host.guest-file-read.directory'],
    ['seekRefused', 'guest-file-seek', 'host.guest-file-seek.negative'],
  ] as const)('%s: %s (%s) in 7.2 and 10.0', (what, execute, name) => {
    for (const version of FIXTURE_VERSIONS) {
      for (const err of bothPaths(execute, fixtureError(version, name))) {
        expect(isAgentError(err, what), `${version}: ${err.extras.agentDesc}`).toBe(true);
        expect(err.extras.agentClass).toBe('GenericError');
      }
    }
  });

  it('the wordings that changed: an unknown pid, a spawn failure, a disabled command', () => {
    expect(fixtureError('7.2', 'host.guest-exec-status.unknown-pid').desc).toBe("Invalid parameter 'pid'");
    expect(fixtureError('10.0', 'host.guest-exec-status.unknown-pid').desc).toBe('PID ld does not exist');
    expect(fixtureError('7.2', 'host.guest-exec.missing-program').desc).toMatch(
      /^Guest agent command failed, error was 'Failed to execute child process/,
    );
    expect(fixtureError('10.0', 'host.guest-exec.missing-program').desc).toMatch(
      /^Failed to execute child process “\/nonexistent\/program” \(No such file or directory\)$/,
    );
    expect(fixtureError('7.2', 'host.disabled-command').desc).toBe('Command guest-set-time has been disabled');
    expect(fixtureError('10.0', 'host.disabled-command').desc).toBe('Command guest-set-time has been disabled: the command is not allowed');
  });

  it.each(FIXTURE_VERSIONS)("qemu-ga %s: the spawn failure's errno is what decides 404 or 403", (version) => {
    expect(AGENT_ERROR_TEXT.spawnFailed.exec(fixtureError(version, 'host.guest-exec.missing-program').desc)![1]).toBe(
      'No such file or directory',
    );
    expect(AGENT_ERROR_TEXT.spawnFailed.exec(fixtureError(version, 'host.guest-exec.not-executable').desc)![1]).toBe('Permission denied');
  });

  it.each(FIXTURE_VERSIONS)(
    'qemu-ga %s: unknown and disabled commands are CommandNotFound on both paths; only the disabled one counts as disabled',
    (version) => {
      for (const [name, disabled] of [
        ['host.unknown-command', false],
        ['host.guest-get-load', false],
        ['host.disabled-command', true],
      ] as const) {
        if (version === '10.0' && name === 'host.guest-get-load') continue; // 10.0 has it
        const e = fixtureError(version, name);
        expect(e.class).toBe('CommandNotFound');
        for (const err of bothPaths('x', e)) {
          expect(err.extras.agentClass, `${version} ${name}`).toBe('CommandNotFound');
          expect(isCommandDisabled(err)).toBe(disabled);
        }
      }
    },
  );

  it("the VMs through libvirt: qemu-ga 7.2's disabled guest-get-devices and 10.0's missing one, told apart", () => {
    const v72 = mapLibvirtError(new LibvirtError({ code: 1, domain: 10, message: libvirtErrorText('7.2', 'guest-get-devices') }));
    expect(v72).toMatchObject({
      code: 'agent_error',
      extras: { agentClass: 'CommandNotFound', agentDesc: 'Command guest-get-devices has been disabled' },
    });
    expect(isCommandDisabled(v72)).toBe(true);
    const v10 = mapLibvirtError(new LibvirtError({ code: 1, domain: 10, message: libvirtErrorText('10.0', 'guest-get-devices') }));
    expect(v10).toMatchObject({
      code: 'agent_error',
      extras: { agentClass: 'CommandNotFound', agentDesc: 'The command guest-get-devices has not been found' },
    });
    expect(isCommandDisabled(v10)).toBe(false);
    for (const name of ['guest-get-load', 'guest-network-get-route']) {
      expect(mapLibvirtError(new LibvirtError({ code: 1, domain: 10, message: libvirtErrorText('7.2', name) })).extras.agentClass).toBe(
        'CommandNotFound',
      );
    }
  });

  it(
    'wordings read in the source and the binaries, not recordable here without changing the host: the 8.2+ fix of the pid message, ' +
      '9.1+ chpasswd, frozen',
    () => {
      expect(AGENT_ERROR_TEXT.unknownPid.test('PID 1234 does not exist')).toBe(true);
      expect(AGENT_ERROR_TEXT.passwordProgramMissing.test("cannot find 'passwd' program in PATH")).toBe(true);
      expect(
        AGENT_ERROR_TEXT.passwordProgramMissing.test(
          "child process has failed to set user password: failed to exec 'chpasswd': No such file or directory",
        ),
      ).toBe(true);
      expect(agentClassFromDesc('Command guest-file-close has been disabled: the agent is in frozen state')).toBe('CommandNotFound');
      expect(AGENT_ERROR_TEXT.timeRefused.test('Failed to set time to guest: Invalid argument')).toBe(true);
      expect(AGENT_ERROR_TEXT.vcpuCannotOffline.test("logical processor #0 can't be offlined")).toBe(true);
      expect(AGENT_ERROR_TEXT.suspendNotSupported.test('the requested suspend mode is not supported by the guest')).toBe(true);
    },
  );
});

describe('through the gateway, with the recorded replies', () => {
  let gw: TestGateway | null = null;

  /** web1, whose agent answers guest-info as qemu-ga 10.0 did, and everything else with handler. */
  async function setup(handler: AgentHandler, config: GatewayOverrides = {}) {
    ({ gw } = await build({
      domains: ['web1'],
      agent: (dom, cmd, t) => (cmd.execute === 'guest-info' ? fixtureReply('10.0', 'guest-info') : handler(dom, cmd, t)),
      config,
    }));
    return gw;
  }

  it('answers a counter past 2^53 as the exact JSON integer', async () => {
    const big = fixtureText('10.0', 'guest-network-get-interfaces').replace('"rx-bytes":1290', '"rx-bytes":9007199254740993');
    await setup(() => ({ raw: big }));
    const res = await gw!.app.inject({ method: 'GET', url: '/domains/web1/network-interfaces' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('"rxBytes":9007199254740993,');
    expect(parseAgentJson(res.body)).toMatchObject({
      interfaces: [{ name: 'lo' }, { name: 'ens2', statistics: { rxBytes: 9007199254740993n, txBytes: 1554 } }],
    });
  });

  it('answers the route flags and metric as the kernel has them (/proc/net/ipv6_route: 80200001, ffffffff)', async () => {
    await setup((_d, cmd) => fixtureReply('10.0', cmd.execute));
    const res = await gw!.app.inject({ method: 'GET', url: '/domains/web1/routes' });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('18446744071564165121');
    const routes = res.json().routes as { interface: string; destination: string; flags: number; metric: number }[];
    expect(routes.filter((r) => r.flags === 0x80200001).map((r) => `${r.interface} ${r.destination}`)).toEqual([
      'lo ::1',
      'ens2 fe80::5054:ff:fea0:6',
      'ens2 fec0::5054:ff:fea0:6',
    ]);
    expect(routes.find((r) => r.destination === '::' && r.interface === 'lo')).toMatchObject({ metric: 4294967295, flags: 0x200200 });
  });

  it("passes a raw command's 64-bit integers on exactly", async () => {
    const gw = await setup((_d, cmd) => fixtureReply('10.0', cmd.execute), {
      rawCommands: { enabled: true },
      auth: { mode: 'none' },
    } as never);
    const res = await gw.app.inject({
      method: 'POST',
      url: '/domains/web1/agent/commands',
      payload: { execute: 'guest-network-get-route' },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain('"flags":18446744071564165121');
  });

  it.each(FIXTURE_VERSIONS)(
    'qemu-ga %s: HEAD and GET of a directory are 400, not a 9223372036854775807-byte file',
    async (version: FixtureVersion) => {
      const closed: unknown[] = [];
      await setup((_d, cmd) => {
        switch (cmd.execute) {
          case 'guest-file-open':
            return fixtureReply(version, 'host.guest-file-open.directory');
          case 'guest-file-seek':
            return (cmd.arguments as { whence: string }).whence === 'end'
              ? fixtureReply(version, 'host.guest-file-seek.directory-end')
              : { return: { position: 0, eof: false } };
          case 'guest-file-read':
            return fixtureReply(version, 'host.guest-file-read.directory');
          case 'guest-file-close':
            closed.push(cmd.arguments);
            return fixtureReply(version, 'host.guest-file-close');
          default:
            return { error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` } };
        }
      });
      const head = await gw!.app.inject({ method: 'HEAD', url: '/domains/web1/files/etc' });
      expect(head.statusCode).toBe(400);
      const get = await gw!.app.inject({ method: 'GET', url: '/domains/web1/files/etc' });
      expect(get.statusCode).toBe(400);
      expect(get.json()).toMatchObject({ code: 'invalid_request', agentDesc: 'failed to read file: Is a directory' });
      expect(closed).toHaveLength(2);
    },
  );
});
