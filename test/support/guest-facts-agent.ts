// A scripted guest agent for the guest facts and settings tests: a newer agent (10.0) that offers every
// command of that area, keeps a guest clock, vCPUs and memory blocks, and applies set commands the way
// qemu-ga does (in order, stopping at the first failure for vCPUs; a result per block for memory).
// The facts are the replies recorded from real agents (test/fixtures/qga/): qemu-ga 10.0.13 in the Debian 13 VM
// by default, qemu-ga 7.2.22 in the busybox VMs with version '7.2' (guest-power for its ext4 disk).
import { defaultAgentHandler, type AgentHandler, type AgentReply } from './fake-libvirtd.js';
import { fixtureReply, type FixtureVersion } from './qga-fixtures.js';

export const GUEST_FACT_COMMANDS = [
  'guest-get-osinfo',
  'guest-get-host-name',
  'guest-get-timezone',
  'guest-get-users',
  'guest-get-fsinfo',
  'guest-get-disks',
  'guest-get-diskstats',
  'guest-get-cpustats',
  'guest-get-load',
  'guest-network-get-route',
  'guest-get-time',
  'guest-set-time',
  'guest-get-vcpus',
  'guest-set-vcpus',
  'guest-get-memory-blocks',
  'guest-set-memory-blocks',
  'guest-get-memory-block-info',
];

export interface FakeGuestState {
  /** Whose recorded replies the read-only facts are. */
  version: FixtureVersion;
  /** ns since the epoch, sent as qemu-ga does (an exact JSON number far above 2^53). */
  timeNs: bigint;
  /** What hwclock -s would set. */
  rtcNs: bigint;
  vcpus: { 'logical-id': number; online: boolean; 'can-offline': boolean }[];
  memoryBlocks: { 'phys-index': number; online: boolean; 'can-offline': boolean }[];
  /** Replies that replace the built-in ones, per command. */
  replies: Record<string, unknown>;
  /** Commands left out of guest-info, as an older agent would. */
  missing: Set<string>;
}

export function fakeGuestState(): FakeGuestState {
  return {
    version: '10.0',
    timeNs: 1_795_824_434_961_949_000n,
    rtcNs: 1_795_824_400_000_000_000n,
    vcpus: [
      { 'logical-id': 0, online: true, 'can-offline': false },
      { 'logical-id': 1, online: true, 'can-offline': true },
      { 'logical-id': 2, online: false, 'can-offline': true },
    ],
    memoryBlocks: [
      { 'phys-index': 0, online: true, 'can-offline': false },
      { 'phys-index': 1, online: true, 'can-offline': true },
      { 'phys-index': 2, online: false, 'can-offline': true },
    ],
    replies: {},
    missing: new Set(),
  };
}

const err = (desc: string) => ({ error: { class: 'GenericError', desc } });

/** The recorded reply of each read-only fact command, per version ('guest-power' has 7.2's block devices). */
const RECORDED: Record<FixtureVersion, Record<string, string>> = {
  '10.0': Object.fromEntries(
    [
      'guest-get-osinfo',
      'guest-get-fsinfo',
      'guest-get-disks',
      'guest-get-diskstats',
      'guest-get-cpustats',
      'guest-get-load',
      'guest-network-get-route',
      'guest-get-memory-block-info',
    ].map((c) => [c, c]),
  ),
  '7.2': {
    'guest-get-osinfo': 'guest-get-osinfo',
    'guest-get-fsinfo': 'guest-get-fsinfo.guest-power',
    'guest-get-disks': 'guest-get-disks.guest-power',
    'guest-get-diskstats': 'guest-get-diskstats.guest-power',
    'guest-get-cpustats': 'guest-get-cpustats',
    'guest-get-memory-block-info': 'guest-get-memory-block-info',
  },
};
const recorded = (version: FixtureVersion, execute: string): AgentReply | undefined => {
  const name = RECORDED[version][execute];
  return name ? fixtureReply(version, name) : undefined;
};

export function guestFactsAgent(state: FakeGuestState): AgentHandler {
  return (dom, cmd, timeout) => {
    const args = (cmd.arguments ?? {}) as Record<string, unknown>;
    if (cmd.execute === 'guest-info') {
      const base = defaultAgentHandler(dom, cmd, timeout) as { return: { supported_commands: { name: string }[] } };
      const names = new Set([...base.return.supported_commands.map((c) => c.name), ...GUEST_FACT_COMMANDS]);
      for (const m of state.missing) names.delete(m);
      if (state.version === '7.2') for (const c of ['guest-get-load', 'guest-network-get-route']) names.delete(c);
      const version = state.version === '7.2' ? '7.2.22' : '10.0.2';
      return {
        return: {
          version,
          supported_commands: [...names].map((name) => ({ name, enabled: true, 'success-response': name !== 'guest-shutdown' })),
        },
      };
    }
    if (cmd.execute in state.replies) return state.replies[cmd.execute] as never;
    const facts = recorded(state.version, cmd.execute);
    if (facts) return facts;
    switch (cmd.execute) {
      case 'guest-get-time':
        return { raw: `{"return":${state.timeNs}}` };
      case 'guest-set-time':
        if (args.time === undefined) state.timeNs = state.rtcNs;
        else if (BigInt(args.time as bigint) < 0n) return err('Failed to set time to guest: Invalid argument');
        else state.timeNs = BigInt(args.time as bigint);
        return { return: {} };
      case 'guest-get-vcpus':
        return { return: state.vcpus.map((v) => ({ ...v })) };
      case 'guest-set-vcpus': {
        const list = args.vcpus as { 'logical-id': number; online: boolean }[];
        let applied = 0;
        for (const change of list) {
          const v = state.vcpus.find((x) => x['logical-id'] === change['logical-id']);
          let failure: string | null = null;
          if (!v) failure = `open("/sys/devices/system/cpu/cpu${change['logical-id']}/"): No such file or directory`;
          else if (!change.online && !v['can-offline']) failure = `logical processor #${change['logical-id']} can't be offlined`;
          if (failure) {
            if (applied === 0) return err(failure);
            break;
          }
          v!.online = change.online;
          applied++;
        }
        return { return: applied };
      }
      case 'guest-get-memory-blocks':
        return { return: state.memoryBlocks.map((b) => ({ ...b })) };
      case 'guest-set-memory-blocks': {
        const list = args['mem-blks'] as { 'phys-index': number; online: boolean }[];
        return {
          return: list.map((change) => {
            const b = state.memoryBlocks.find((x) => x['phys-index'] === change['phys-index']);
            if (!b) return { 'phys-index': change['phys-index'], response: 'not-found', 'error-code': 2 };
            b.online = change.online;
            return { 'phys-index': change['phys-index'], response: 'success' };
          }),
        };
      }
      case 'guest-get-users':
        // Not recorded: no guest here has a utmp with logins (both VMs answer []). The shape of qga/qapi-schema.json's
        // GuestUser; 'domain' is what a Windows agent adds.
        return {
          return: [
            { user: 'root', 'login-time': 1795824062.5 },
            { user: 'alice', 'login-time': 1795824000, domain: 'CORP' },
          ],
        };
      default:
        return defaultAgentHandler(dom, cmd, timeout);
    }
  };
}
