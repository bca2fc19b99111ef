// An in-memory guest file system for the fake libvirtd's agent: guest-file-open/-read/-write/-seek/-flush/-close
// with qemu-ga's error wording, and a record of every handle opened and closed, so that tests can assert that
// none is left open. Everything else goes to defaultAgentHandler (guest-info lists the file commands).
import { defaultAgentHandler, type AgentCommand, type AgentHandler, type AgentReply, type FakeDomain } from './fake-libvirtd.js';

const FILE_COMMANDS = ['guest-file-open', 'guest-file-read', 'guest-file-write', 'guest-file-seek', 'guest-file-flush', 'guest-file-close'];

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
      const info = (await defaultAgentHandler(dom, cmd, timeout)) as { return: { version: string; supported_commands: { name: string }[] } };
      const have = new Set(info.return.supported_commands.map((c) => c.name));
      const extra = FILE_COMMANDS.filter((c) => !have.has(c)).map((name) => ({ name, enabled: true, 'success-response': true }));
      return { return: { ...info.return, supported_commands: [...info.return.supported_commands, ...extra] } };
    }
    if (!FILE_COMMANDS.includes(cmd.execute)) return defaultAgentHandler(dom, cmd, timeout);
    this.counts.set(cmd.execute, (this.counts.get(cmd.execute) ?? 0) + 1);
    const override = await this.intercept?.(cmd);
    if (override) return override;
    return this.run(cmd);
  };

  private run(cmd: AgentCommand): AgentReply {
    const a = (cmd.arguments ?? {}) as Record<string, unknown>;
    const err = (desc: string): AgentReply => ({ error: { class: 'GenericError', desc } });
    if (cmd.execute === 'guest-file-open') {
      const path = String(a.path);
      const mode = String(a.mode ?? 'r');
      if (this.denied.has(path)) return err(`failed to open file '${path}' (mode: '${mode}'): Permission denied`);
      if (!this.files.has(path)) {
        if (mode === 'r' || mode === 'r+') return err(`failed to open file '${path}' (mode: '${mode}'): No such file or directory`);
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
    if (!f) return err(`handle '${h}' has not been found`);
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
