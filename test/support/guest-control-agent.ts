// A scripted guest agent for the exec, accounts and raw-command unit tests: a process table that behaves
// like qemu-ga's (guest-exec-status reaps an exited process; a second call fails, "Invalid parameter 'pid'" from
// 7.2, "PID ld does not exist" from 10.0), and authorized_keys files per user. Error texts are the recorded ones
// (test/fixtures/qga). Everything else goes to the fake's default agent.
import { defaultAgentHandler, type AgentCommand, type AgentHandler, type AgentReply } from './fake-libvirtd.js';
import { fixtureErrorFor, type FixtureVersion } from './qga-fixtures.js';

export interface ScriptedProcess {
  /** guest-exec-status calls answered "still running" before it exits. */
  runningPolls: number;
  exitcode?: number;
  signal?: number;
  out?: Buffer;
  err?: Buffer;
}

const EXTRA_COMMANDS = [
  'guest-set-user-password',
  'guest-ssh-get-authorized-keys',
  'guest-ssh-add-authorized-keys',
  'guest-ssh-remove-authorized-keys',
  'guest-get-users',
  'guest-suspend-ram',
  'guest-fsfreeze-freeze',
];

export class GuestControlAgent {
  /** Whose recorded error wording the agent uses (test/fixtures/qga): guest-exec-status's differs. */
  agentVersion: FixtureVersion = '7.2';
  nextPid = 1000;
  readonly processes = new Map<number, ScriptedProcess & { args: unknown }>();
  /** What the next guest-exec starts; a spawn failure when it is an error. */
  onExec: (args: Record<string, unknown>) => ScriptedProcess | { error: { class: string; desc: string } } = () => ({
    runningPolls: 0,
    exitcode: 0,
  });
  /** home directory contents: user -> authorized_keys lines, or undefined for no file. Users not listed do not exist. */
  readonly keys = new Map<string, string[] | undefined>([['root', undefined]]);
  /** guest-set-user-password's answer. */
  passwordReply: AgentReply = { return: {} };
  /** Replies for other commands, by name. */
  readonly replies = new Map<string, AgentReply>();

  readonly handler: AgentHandler = (dom, cmd, timeout) => this.handle(cmd) ?? defaultAgentHandler(dom, cmd, timeout);

  private handle(cmd: AgentCommand): AgentReply | undefined {
    const args = (cmd.arguments ?? {}) as Record<string, unknown>;
    const user = args.username as string;
    const noUser = fixtureErrorFor(this.agentVersion, 'host.guest-ssh-get-authorized-keys.unknown-user', { 'qga-no-such-user': user });
    switch (cmd.execute) {
      case 'guest-info': {
        const info = defaultAgentHandler({} as never, cmd, 0) as { return: { supported_commands: { name: string }[] } };
        const names = [...info.return.supported_commands.map((c) => c.name), ...EXTRA_COMMANDS];
        return {
          return: {
            version: '7.2.22',
            supported_commands: names.map((name) => ({
              name,
              enabled: true,
              'success-response': !/^guest-(shutdown|suspend-)/.test(name),
            })),
          },
        };
      }
      case 'guest-exec': {
        const p = this.onExec(args);
        if ('error' in p) return p;
        const pid = this.nextPid++;
        this.processes.set(pid, { ...p, args });
        return { return: { pid } };
      }
      case 'guest-exec-status': {
        const pid = args.pid as number;
        const p = this.processes.get(pid);
        if (!p) return fixtureErrorFor(this.agentVersion, 'host.guest-exec-status.unknown-pid', {});
        if (p.runningPolls > 0) {
          p.runningPolls--;
          return { return: { exited: false } };
        }
        this.processes.delete(pid);
        const ret: Record<string, unknown> = { exited: true };
        if (p.exitcode !== undefined) ret.exitcode = p.exitcode;
        if (p.signal !== undefined) ret.signal = p.signal;
        if (p.out) Object.assign(ret, { 'out-data': p.out.toString('base64'), 'out-truncated': false });
        if (p.err) Object.assign(ret, { 'err-data': p.err.toString('base64'), 'err-truncated': false });
        return { return: ret };
      }
      case 'guest-set-user-password':
        return this.passwordReply;
      case 'guest-ssh-get-authorized-keys': {
        if (!this.keys.has(user)) return noUser;
        const lines = this.keys.get(user);
        if (!lines)
          return fixtureErrorFor(this.agentVersion, 'host.guest-ssh-get-authorized-keys.no-file', { '/nonexistent': `/home/${user}` });
        return { return: { keys: lines } };
      }
      case 'guest-ssh-add-authorized-keys': {
        if (!this.keys.has(user)) return noUser;
        const have = args.reset ? [] : (this.keys.get(user) ?? []);
        for (const k of args.keys as string[]) if (!have.includes(k)) have.push(k);
        this.keys.set(user, have);
        return { return: {} };
      }
      case 'guest-ssh-remove-authorized-keys': {
        if (!this.keys.has(user)) return noUser;
        const drop = new Set(args.keys as string[]);
        this.keys.set(
          user,
          (this.keys.get(user) ?? []).filter((k) => !drop.has(k)),
        );
        return { return: {} };
      }
      default:
        return this.replies.get(cmd.execute);
    }
  }
}
