// An in-memory guest file system for the fake libvirtd's agent: guest-file-open/-read/-write/-seek/-flush/-close
// with qemu-ga's error wording, and a record of every handle opened and closed, so that tests can assert that
// none is left open. Everything else goes to defaultAgentHandler (guest-info lists the file commands).
// guest-exec runs the two programs an atomic upload needs (src/agent/files/replace-commands.ts, seen run for real by
// test/e2e/atomic-upload.test.ts): the replace script (rename over the target; exit 3 for a link, 4 for a
// directory, 6 when the temporary file is gone or not the size written) and
// rm -f; guest-exec-status answers as qemu-ga does once a process has exited (output base64-encoded).
import { defaultAgentHandler, type AgentCommand, type AgentHandler, type AgentReply, type FakeDomain } from './fake-libvirtd.js';
import { fixtureErrorFor, recordedHostDir, type FixtureVersion } from './qga-fixtures.js';

const FILE_COMMANDS = ['guest-file-open', 'guest-file-read', 'guest-file-write', 'guest-file-seek', 'guest-file-flush', 'guest-file-close'];
const EXEC_COMMANDS = ['guest-exec', 'guest-exec-status', 'guest-get-osinfo'];

interface OpenFile {
  path: string;
  mode: string;
  pos: number;
}

export class FakeGuestFiles {
  /** Path to content. */
  readonly files = new Map<string, Buffer>();
  /** Paths whose open is refused with EACCES. */
  readonly denied = new Set<string>();
  /** Paths that are symbolic links or directories, as the replace script sees them. */
  readonly symlinks = new Set<string>();
  readonly directories = new Set<string>();
  /** false: guest-info lists guest-exec as disabled (RHEL's default qemu-ga configuration). */
  execEnabled = true;
  /** guest-get-osinfo's id: 'mswindows' for a Windows guest (qga/commands-win32.c). */
  osId = 'debian';
  /** Whose recorded error wording the agent uses (test/fixtures/qga): they differ for guest-exec and guest-exec-status. */
  agentVersion: FixtureVersion = '7.2';
  /** Every program run: path and arguments. */
  readonly programs: { path: string; args: string[] }[] = [];
  private readonly exited = new Map<number, { exitcode: number; out: string; err: string }>();
  private nextPid = 4000;
  readonly handles = new Map<number, OpenFile>();
  readonly opened: number[] = [];
  readonly closed: number[] = [];
  /** Counts of each command received. */
  readonly counts = new Map<string, number>();
  /** Largest count a guest-file-read asked for. */
  maxReadCount = 0;
  private next = 1000;
  /** Runs before each file command; may return a reply to use instead (an error, a hang) or a delay. */
  intercept: ((cmd: AgentCommand) => AgentReply | undefined | Promise<AgentReply | undefined>) | null = null;

  /** Handles opened and not closed. */
  get leaked(): number[] {
    return [...this.handles.keys()];
  }

  readonly handler: AgentHandler = async (dom: FakeDomain, cmd: AgentCommand, timeout: number) => {
    if (cmd.execute === 'guest-info') {
      const info = (await defaultAgentHandler(dom, cmd, timeout)) as {
        return: { version: string; supported_commands: { name: string }[] };
      };
      const have = new Set(info.return.supported_commands.map((c) => c.name));
      const extra = [...FILE_COMMANDS, ...EXEC_COMMANDS]
        .filter((c) => !have.has(c))
        .map((name) => ({ name, enabled: true, 'success-response': true }));
      const all = [...info.return.supported_commands, ...extra].map((c) =>
        c.name === 'guest-exec' ? { ...c, enabled: this.execEnabled } : c,
      );
      return { return: { ...info.return, supported_commands: all } };
    }
    if (EXEC_COMMANDS.includes(cmd.execute)) {
      this.counts.set(cmd.execute, (this.counts.get(cmd.execute) ?? 0) + 1);
      const override = await this.intercept?.(cmd);
      if (override) return override;
      return this.runExec(cmd);
    }
    if (!FILE_COMMANDS.includes(cmd.execute)) return defaultAgentHandler(dom, cmd, timeout);
    this.counts.set(cmd.execute, (this.counts.get(cmd.execute) ?? 0) + 1);
    const override = await this.intercept?.(cmd);
    if (override) return override;
    return this.run(cmd);
  };

  /** Whether this fake answers the command when it shares a domain with another fake agent: file commands, the gateway's own programs and their status. */
  owns(cmd: AgentCommand): boolean {
    const a = (cmd.arguments ?? {}) as Record<string, unknown>;
    if (FILE_COMMANDS.includes(cmd.execute)) return true;
    if (cmd.execute === 'guest-exec-status') return this.exited.has(Number(a.pid));
    if (cmd.execute !== 'guest-exec') return false;
    const args = (a.arg ?? []) as string[];
    return (a.path === '/bin/rm' && args[0] === '-f' && args[1] === '--') || (a.path === '/bin/sh' && args[2] === 'qga-gateway-replace');
  }

  private runExec(cmd: AgentCommand): AgentReply {
    const a = (cmd.arguments ?? {}) as Record<string, unknown>;
    if (cmd.execute === 'guest-get-osinfo')
      return {
        return: { id: this.osId, name: this.osId === 'mswindows' ? 'Microsoft Windows' : 'Debian GNU/Linux', 'kernel-release': '6.1.0' },
      };
    if (cmd.execute === 'guest-exec-status') {
      const r = this.exited.get(Number(a.pid));
      if (!r) return fixtureErrorFor(this.agentVersion, 'host.guest-exec-status.unknown-pid', {});
      this.exited.delete(Number(a.pid));
      return {
        return: {
          exited: true,
          exitcode: r.exitcode,
          'out-data': Buffer.from(r.out).toString('base64'),
          'err-data': Buffer.from(r.err).toString('base64'),
        },
      };
    }
    const path = String(a.path);
    const args = (a.arg ?? []) as string[];
    this.programs.push({ path, args });
    const result = this.program(path, args);
    // GLib's spawn message when the program cannot be started (7.2 wraps it, 10.0 does not): as recorded.
    if (!result) return fixtureErrorFor(this.agentVersion, 'host.guest-exec.missing-program', { '/nonexistent/program': path });
    const pid = this.nextPid++;
    this.exited.set(pid, result);
    return { return: { pid } };
  }

  /** The gateway's two programs; null for anything else (a program the fake guest does not have). */
  private program(path: string, args: string[]): { exitcode: number; out: string; err: string } | null {
    if (path === '/bin/rm' && args[0] === '-f' && args[1] === '--') {
      this.files.delete(args[2]!);
      return { exitcode: 0, out: '', err: '' };
    }
    if (path === '/bin/sh' && args[0] === '-c' && args[2] === 'qga-gateway-replace') {
      const [temp, target, bytes] = [args[3]!, args[4]!, Number(args[5])];
      const refuse = this.symlinks.has(target)
        ? 3
        : this.directories.has(target)
          ? 4
          : !this.files.has(temp)
            ? 6
            : this.files.get(temp)!.length !== bytes
              ? 6
              : 0;
      if (refuse) {
        this.files.delete(temp);
        return { exitcode: refuse, out: '', err: refuse === 4 ? 'directory\n' : '' };
      }
      const existed = this.files.has(target);
      this.files.set(target, this.files.get(temp)!);
      this.files.delete(temp);
      return { exitcode: 0, out: existed ? 'owner\nmode\n' : 'new\n', err: '' };
    }
    return null;
  }

  private run(cmd: AgentCommand): AgentReply {
    const a = (cmd.arguments ?? {}) as Record<string, unknown>;
    const err = (desc: string): AgentReply => ({ error: { class: 'GenericError', desc } });
    const v = this.agentVersion;
    if (cmd.execute === 'guest-file-open') {
      const path = String(a.path);
      const mode = String(a.mode ?? 'r');
      // The recorded wording, with this path and mode (EACCES was not recorded: the host agent runs as root).
      const missing = fixtureErrorFor(v, 'host.guest-file-open.missing', {
        [`${recordedHostDir(v)}/no-such-file`]: path,
        "(mode: 'r')": `(mode: '${mode}')`,
      });
      if (this.denied.has(path))
        return {
          error: {
            class: 'GenericError',
            desc: (missing as { error: { desc: string } }).error.desc.replace('No such file or directory', 'Permission denied'),
          },
        };
      if (!this.files.has(path)) {
        if (mode === 'r' || mode === 'r+') return missing;
        this.files.set(path, Buffer.alloc(0));
      }
      if (mode === 'w') this.files.set(path, Buffer.alloc(0));
      const h = this.next++;
      this.handles.set(h, { path, mode, pos: 0 });
      this.opened.push(h);
      return { return: h };
    }
    const h = Number(a.handle);
    const f = this.handles.get(h);
    if (!f) return fixtureErrorFor(v, 'host.guest-file-read.unknown-handle', { '999999': String(h) });
    const content = this.files.get(f.path)!;
    switch (cmd.execute) {
      case 'guest-file-close':
        this.handles.delete(h);
        this.closed.push(h);
        return { return: {} };
      case 'guest-file-flush':
        return { return: {} };
      case 'guest-file-seek': {
        const base = a.whence === 'end' ? content.length : a.whence === 'cur' ? f.pos : 0;
        f.pos = base + Number(a.offset);
        return { return: { position: f.pos, eof: false } };
      }
      case 'guest-file-read': {
        const count = Number(a.count ?? 4096);
        this.maxReadCount = Math.max(this.maxReadCount, count);
        const data = content.subarray(f.pos, f.pos + count);
        f.pos += data.length;
        return { return: { count: data.length, 'buf-b64': data.toString('base64'), eof: f.pos >= content.length } };
      }
      case 'guest-file-write': {
        const data = Buffer.from(String(a['buf-b64']), 'base64');
        const at = f.mode === 'a' ? content.length : f.pos;
        const out = Buffer.alloc(Math.max(content.length, at + data.length));
        content.copy(out);
        data.copy(out, at);
        this.files.set(f.path, out);
        f.pos = at + data.length;
        return { return: { count: data.length, eof: false } };
      }
    }
    return err('unreachable');
  }
}
