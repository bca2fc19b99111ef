// src/agent/raw: any agent command as JSON (POST /domains/{domain}/agent/commands), for what the typed resources
// lack. It still goes through capability gating, the per-domain queue and the deadline; what could break the
// domain's agent channel or leave the guest stuck is refused before it is sent (the catalogue's rawRefused).
// raw-file-handles.ts remembers who opened which handle (src/auth/raw-authorization.ts decides with it).
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import { isAgentError } from '../core/agent-errors.js';
import { MAX_COMMAND_JSON_BYTES, commandJsonBytes } from '../core/command-limits.js';
import { command } from '../commands/define.js';
import { guestExec } from '../commands/exec.js';
import { guestFileClose, guestFileOpen, guestFileRead, MAX_RAW_FILE_READ_BYTES, openModeAccess } from '../commands/files.js';
import { commandFacts } from '../commands/index.js';
import type { ExecService } from '../exec/exec-service.js';
import type { GuestFileService } from '../files/files.js';
import { RawFileHandles, type RawHandle } from './raw-file-handles.js';
import { guestUserName, PASSWORD_LINE, PASSWORD_LINE_MESSAGE, sshKeyLineChecked } from '../guest/account-rules.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import { domainKey, type DomainRef } from '../../domains/vocabulary.js';

export interface RawCommandRequest {
  execute: string;
  arguments?: Record<string, unknown>;
}

const rawCommand = (execute: string) => command(execute, 'query', z.unknown(), z.unknown());

/** A base64 argument whose decoded text holds no line break (the password qemu-ga hands chpasswd). */
const base64PasswordLine = z.base64().refine((b64) => PASSWORD_LINE.test(Buffer.from(b64, 'base64').toString('latin1')), {
  message: `the decoded password ${PASSWORD_LINE_MESSAGE}`,
});

/**
 * The account commands' arguments, held to the rules the accounts routes enforce (agent/guest/account-rules.ts):
 * checked, not rewritten; what else the command takes is left to the agent.
 */
const RAW_ARGUMENT_RULES: Record<string, z.ZodType> = {
  'guest-set-user-password': z.looseObject({ username: guestUserName, password: base64PasswordLine }),
  'guest-ssh-get-authorized-keys': z.looseObject({ username: guestUserName }),
  'guest-ssh-add-authorized-keys': z.looseObject({ username: guestUserName, keys: z.array(sshKeyLineChecked) }),
  'guest-ssh-remove-authorized-keys': z.looseObject({ username: guestUserName, keys: z.array(sshKeyLineChecked) }),
};

/** Who holds a guest file handle, as far as this gateway knows. */
export type HandleHolder = 'gateway' | RawHandle | undefined;

export class RawCommandService {
  /** Handles opened through this endpoint, and by whom. */
  private readonly handles = new RawFileHandles();

  constructor(
    private readonly agent: AgentService,
    private readonly config: Config['rawCommands'],
    private readonly files: GuestFileService,
    private readonly exec: ExecService,
  ) {}

  /** Throws when the gateway will not send this; the checks that need no guest first. */
  check(req: RawCommandRequest, dom?: DomainRef): void {
    const context = { command: req.execute, ...(dom ? { domain: dom.name } : {}) };
    if (!this.config.enabled) {
      throw new GatewayError(
        'command_forbidden',
        'raw agent commands are turned off; set rawCommands.enabled to true in the gateway config to allow them',
        context,
      );
    }
    const why = commandFacts(req.execute)?.rawRefused;
    if (why) throw new GatewayError('command_forbidden', `${req.execute} is refused here: ${why}`, context);
    if (this.config.deny.includes(req.execute))
      throw new GatewayError('command_forbidden', `${req.execute} is denied by the gateway config (rawCommands.deny)`, context);
    if (req.execute === guestFileRead.execute) {
      const count = req.arguments?.count;
      if (count !== undefined && (typeof count !== 'number' || count > MAX_RAW_FILE_READ_BYTES)) {
        throw new GatewayError(
          'command_forbidden',
          `guest-file-read count must be a number of at most ${MAX_RAW_FILE_READ_BYTES} bytes: ` +
            "a larger reply fails libvirt's 4 MiB message cap, and one over 10 MiB breaks the domain's agent channel",
          context,
        );
      }
    }
    const size = commandJsonBytes(req.execute, req.arguments);
    if (size > MAX_COMMAND_JSON_BYTES) {
      throw new GatewayError(
        'payload_too_large',
        `the command is ${size} bytes of JSON, over the ${MAX_COMMAND_JSON_BYTES} bytes qemu-ga 7.2 parses reliably (a larger ` +
          'one can be misread and desynchronise the agent channel)',
        context,
      );
    }
  }

  /** Who holds this handle of the domain's agent: a transfer of the file routes, a raw caller, or nobody known. */
  handleHolder(dom: DomainRef, handle: number): HandleHolder {
    return this.files.holds(dom, handle) ? 'gateway' : this.handles.get(domainKey(dom), handle);
  }

  /** The domain or its agent restarted: the handles it had are gone. */
  forgetDomain(key: string): void {
    this.handles.forgetDomain(key);
  }

  /**
   * Sends the command on behalf of `identity` and answers the agent's "return" as is. What it opens or starts is
   * recorded as that identity's: a handle for its later raw file commands, a process for GET /exec/{pid}.
   */
  async run(dom: DomainRef, req: RawCommandRequest, opts: AgentCallOptions, identity: string): Promise<unknown> {
    this.check(req, dom);
    // After the caller's scopes were checked (the route's authorizeRawCommand): one without them is told 403, not what is wrong.
    const rules = RAW_ARGUMENT_RULES[req.execute]?.safeParse(req.arguments ?? {});
    if (rules && !rules.success) {
      const issue = rules.error.issues[0]!;
      throw new GatewayError('invalid_request', `${req.execute}: arguments.${issue.path.join('.')} ${issue.message}`, {
        command: req.execute,
        domain: dom.name,
      });
    }
    // A command the agent sends no reply for on success (guest-shutdown, guest-suspend-*) would hold the
    // domain's queue until the deadline and then look like a failure: the typed power resources handle them.
    const caps = await this.agent.capabilities(dom, opts);
    if (caps.commands.get(req.execute)?.successResponse === false) {
      throw new GatewayError(
        'command_forbidden',
        `${req.execute} sends no reply on success, which this endpoint cannot tell from a hang; use the power resources`,
        { domain: dom.name, command: req.execute },
      );
    }
    const key = domainKey(dom);
    const handle = req.arguments?.handle;
    try {
      const result = await this.agent.execute(dom, rawCommand(req.execute), req.arguments, opts).catch((err: unknown) => {
        // Arguments this agent's schema refuses (missing, unknown, of the wrong type: e.g. an argument only a newer
        // agent takes) are the caller's to fix: 400, with the agent's words.
        if (isAgentError(err, 'badArguments')) {
          throw new GatewayError(
            'invalid_request',
            `the guest agent (${req.execute}) refused the arguments: ${err.extras.agentDesc}`,
            err.extras,
          );
        }
        throw err;
      });
      if (req.execute === guestFileOpen.execute && Number.isSafeInteger(result)) {
        this.handles.add(key, result as number, { identity, ...openModeAccess(req.arguments?.mode) });
      }
      const pid = (result as { pid?: unknown } | null)?.pid;
      if (req.execute === guestExec.execute && Number.isSafeInteger(pid)) this.exec.started(dom, pid as number, identity);
      return result;
    } finally {
      // Closed, or the agent refused to close it (already closed, or unknown to it): not this caller's any more.
      if (req.execute === guestFileClose.execute && typeof handle === 'number') this.handles.remove(key, handle);
    }
  }
}
