// A scripted guest agent for the power, freeze and addresses tests: the fake's default agent, plus
// guest-shutdown / guest-suspend-* (never reply), a guest-fsfreeze-* state machine that refuses other
// commands while frozen (as qemu-ga does), and guest-fstrim.
import { defaultAgentHandler, type AgentHandler, type AgentReply } from './fake-libvirtd.js';

export const OPERATIONS_COMMANDS = [
  'guest-ping',
  'guest-sync',
  'guest-sync-delimited',
  'guest-info',
  'guest-network-get-interfaces',
  'guest-get-host-name',
  'guest-shutdown',
  'guest-suspend-ram',
  'guest-suspend-disk',
  'guest-suspend-hybrid',
  'guest-fsfreeze-status',
  'guest-fsfreeze-freeze',
  'guest-fsfreeze-freeze-list',
  'guest-fsfreeze-thaw',
  'guest-fstrim',
];

const NO_REPLY = new Set(['guest-shutdown', 'guest-suspend-ram', 'guest-suspend-disk', 'guest-suspend-hybrid']);
const ALLOWED_FROZEN = new Set([
  'guest-ping',
  'guest-info',
  'guest-sync',
  'guest-sync-delimited',
  'guest-fsfreeze-status',
  'guest-fsfreeze-thaw',
]);

export interface OperationsAgent {
  handler: AgentHandler;
  /** Per domain name: frozen or not. */
  frozen: Map<string, boolean>;
  /** Mount points the guest has (freeze answers their count). */
  mounts: string[];
  /** Commands not offered (left out of guest-info). */
  missing: Set<string>;
  /** Per command, a reply overriding the script. */
  overrides: Map<string, AgentReply>;
}

export function operationsAgent(): OperationsAgent {
  const state: OperationsAgent = {
    handler: null as unknown as AgentHandler,
    frozen: new Map(),
    mounts: ['/', '/var'],
    missing: new Set(),
    overrides: new Map(),
  };
  state.handler = (dom, cmd, timeout) => {
    const override = state.overrides.get(cmd.execute);
    if (override) return override;
    const frozen = state.frozen.get(dom.name) ?? false;
    // qemu-ga 7.2's wording while frozen (its binary's "Command %s has been disabled%s%s" and "the agent is in frozen
    // state"; not recorded: freezing a shared VM or the host is not done here). test/fixtures/qga has 7.2's and
    // 10.0's wording for a command blocked with -b.
    if (frozen && !ALLOWED_FROZEN.has(cmd.execute)) {
      return { error: { class: 'CommandNotFound', desc: `Command ${cmd.execute} has been disabled: the agent is in frozen state` } };
    }
    const args = (cmd.arguments ?? {}) as { mountpoints?: string[]; minimum?: number };
    switch (cmd.execute) {
      case 'guest-info':
        return {
          return: {
            version: '7.2.22',
            supported_commands: OPERATIONS_COMMANDS.filter((c) => !state.missing.has(c)).map((name) => ({
              name,
              enabled: true,
              'success-response': !NO_REPLY.has(name),
            })),
          },
        };
      case 'guest-fsfreeze-status':
        return { return: frozen ? 'frozen' : 'thawed' };
      case 'guest-fsfreeze-freeze':
      case 'guest-fsfreeze-freeze-list': {
        if (frozen)
          return {
            error: { class: 'CommandNotFound', desc: 'Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state' },
          };
        const wanted = cmd.execute === 'guest-fsfreeze-freeze' ? state.mounts : state.mounts.filter((m) => args.mountpoints?.includes(m));
        if (wanted.length > 0) state.frozen.set(dom.name, true);
        return { return: wanted.length };
      }
      case 'guest-fsfreeze-thaw': {
        state.frozen.set(dom.name, false);
        return { return: frozen ? state.mounts.length : 0 };
      }
      case 'guest-fstrim':
        return {
          return: {
            paths: [
              { path: '/', trimmed: 4096, minimum: args.minimum ?? 0 },
              { path: '/boot', error: 'trim not supported' },
            ],
          },
        };
    }
    if (NO_REPLY.has(cmd.execute)) return { hang: true };
    return defaultAgentHandler(dom, cmd, timeout);
  };
  return state;
}
