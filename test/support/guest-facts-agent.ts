// A scripted guest agent for the guest facts and settings tests: a newer agent (10.0) that offers every
// command of that area, keeps a guest clock, vCPUs and memory blocks, and applies set commands the way
// qemu-ga does (in order, stopping at the first failure for vCPUs; a result per block for memory).
import { defaultAgentHandler, type AgentHandler } from './fake-libvirtd.js';

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
  /** ns since the epoch, as the agent would send it (a JSON number). */
  timeNs: number;
  /** What hwclock -s would set. */
  rtcNs: number;
  vcpus: { 'logical-id': number; online: boolean; 'can-offline': boolean }[];
  memoryBlocks: { 'phys-index': number; online: boolean; 'can-offline': boolean }[];
  /** Replies that replace the built-in ones, per command. */
  replies: Record<string, unknown>;
  /** Commands left out of guest-info, as an older agent would. */
  missing: Set<string>;
}

export function fakeGuestState(): FakeGuestState {
  return {
    timeNs: 1_795_824_434_961_949_000,
    rtcNs: 1_795_824_400_000_000_000,
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

export function guestFactsAgent(state: FakeGuestState): AgentHandler {
  return (dom, cmd, timeout) => {
    const args = (cmd.arguments ?? {}) as Record<string, unknown>;
    if (cmd.execute === 'guest-info') {
      const base = defaultAgentHandler(dom, cmd, timeout) as { return: { supported_commands: { name: string }[] } };
      const names = new Set([...base.return.supported_commands.map((c) => c.name), ...GUEST_FACT_COMMANDS]);
      for (const m of state.missing) names.delete(m);
      return { return: { version: '10.0.2', supported_commands: [...names].map((name) => ({ name, enabled: true, 'success-response': name !== 'guest-shutdown' })) } };
    }
    if (cmd.execute in state.replies) return state.replies[cmd.execute] as never;
    switch (cmd.execute) {
      case 'guest-get-time':
        return { return: state.timeNs };
      case 'guest-set-time':
        if (args.time === undefined) state.timeNs = state.rtcNs;
        else if ((args.time as number) < 0) return err('Failed to set time to guest: Invalid argument');
        else state.timeNs = args.time as number;
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
      case 'guest-get-memory-block-info':
        return { return: { size: 134217728 } };
      case 'guest-get-users':
        return { return: [{ user: 'root', 'login-time': 1795824062.5 }, { user: 'alice', 'login-time': 1795824000, domain: 'CORP' }] };
      case 'guest-get-fsinfo':
        return {
          return: [
            {
              name: 'vda1',
              mountpoint: '/',
              type: 'ext4',
              'used-bytes': 1073741824,
              'total-bytes': 10737418240,
              disk: [{ 'pci-controller': { domain: 0, bus: 0, slot: 5, function: 0 }, 'bus-type': 'virtio', bus: 0, target: 0, unit: 0, serial: 'SN1', dev: '/dev/vda1' }],
            },
            { name: 'sr0', mountpoint: '/media', type: 'iso9660', disk: [] },
          ],
        };
      case 'guest-get-disks':
        return {
          return: [
            {
              name: '/dev/nvme0n1',
              partition: false,
              dependencies: [],
              address: { 'pci-controller': { domain: 0, bus: 0, slot: 6, function: 0 }, 'bus-type': 'nvme', bus: 0, target: 0, unit: 0, dev: '/dev/nvme0n1' },
              smart: { type: 'nvme', 'critical-warning': 0, 'power-on-hours-lo': 12 },
            },
            { name: '/dev/dm-0', partition: false, dependencies: ['/dev/nvme0n1p2'], alias: 'root' },
          ],
        };
      case 'guest-get-diskstats':
        return { return: [{ name: 'vda', major: 254, minor: 0, stats: { 'read-sectors': 2048, 'read-ios': 100, 'read-ticks': 40, 'ios-pgr': 0, 'weight-ticks': 54 } }] };
      case 'guest-get-cpustats':
        return {
          return: [
            { type: 'linux', cpu: 0, user: 420, nice: 0, system: 4620, idle: 341530, iowait: 0, irq: 0, softirq: 70, steal: 0, guest: 0, guestnice: 0 },
            { type: 'linux', cpu: 1, user: 1, nice: 2, system: 3, idle: 4 },
          ],
        };
      case 'guest-get-load':
        // Field names as qemu-ga 10.0.13 sends them (recorded on the host: scripts/qemu-ga-10.sh).
        return { return: { load15m: 0.125, load5m: 0.25, load1m: 0.5 } };
      case 'guest-network-get-route':
        return {
          return: [
            { iface: 'eth0', destination: '0.0.0.0', gateway: '10.0.2.2', mask: '0.0.0.0', metric: 0, flags: 3, refcnt: 0, use: 0, window: 0, mtu: 0, irtt: 0, version: 4 },
            { iface: 'eth0', destination: 'fe80::', desprefixlen: '64', source: '::', srcprefixlen: '0', nexthop: '::', metric: 256, flags: 1, refcnt: 1, use: 0, version: 6 },
          ],
        };
      default:
        return defaultAgentHandler(dom, cmd, timeout);
    }
  };
}
