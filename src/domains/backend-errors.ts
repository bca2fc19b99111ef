// Turns what libvirt and the wire client raise into the gateway's typed errors.
import { GatewayError, type ErrorExtras } from '../errors.js';
import { ConnectionError, LibvirtError } from '../libvirt/errors.js';
import { VirErrorCode } from '../libvirt/protocol.js';

/**
 * How qemu-ga words an unknown or disabled command (the class CommandNotFound), which libvirt passes on as text:
 * - not found: "The command guest-get-load has not been found" (qapi/qmp-dispatch.c, every version).
 * - disabled: 7.2 "Command guest-set-time has been disabled", with ": the agent is in frozen state" while
 *   frozen; 10.0 "Command guest-set-time has been disabled: the command is not allowed" (blocked by -b).
 * The agent's other wordings are in src/agent/core/agent-errors.ts.
 */
export const COMMAND_NOT_FOUND = /^The command \S+ has not been found/;
const COMMAND_DISABLED = /^Command \S+ has been disabled/;

/** The class qemu-ga gave an error, from its text alone (libvirt's path): CommandNotFound for an unknown or disabled command. */
export function agentClassFromDesc(desc: string): string {
  return COMMAND_NOT_FOUND.test(desc) || COMMAND_DISABLED.test(desc) ? 'CommandNotFound' : 'GenericError';
}

// libvirt folds the agent's {"error":{"class","desc"}} into this message (qemuAgentCheckError), losing the class.
const AGENT_ERROR_RE = /unable to execute QEMU agent command '([^']*)'(?::\s*([\s\S]*))?$/;

/** The agent's own {"error": {class, desc}} for a command, however it arrived (libvirt's message, or the socket). */
export function agentError(execute: string, desc: string, agentClass: string, context: ErrorExtras = {}): GatewayError {
  const text = desc.trim() || 'the agent gave no description';
  return new GatewayError('agent_error', `the guest agent failed '${execute}': ${text}`, { ...context, agentClass, agentDesc: text });
}

export function mapLibvirtError(err: unknown, context: { domain?: string; command?: string } = {}): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof ConnectionError) {
    return new GatewayError('libvirt_unavailable', err.message, { retryAfter: 2, ...context });
  }
  if (!(err instanceof LibvirtError)) {
    return new GatewayError('internal_error', err instanceof Error ? err.message : String(err), context);
  }
  const extras = { libvirtCode: err.code, ...context };
  const msg = err.message;
  switch (err.code) {
    case VirErrorCode.NO_DOMAIN:
      return new GatewayError('domain_not_found', msg, extras);
    case VirErrorCode.OPERATION_INVALID:
      if (/not running/.test(msg)) return new GatewayError('domain_not_running', msg, extras);
      return new GatewayError('libvirt_error', msg, extras);
    case VirErrorCode.ARGUMENT_UNSUPPORTED:
      if (/agent is not configured/.test(msg)) return new GatewayError('agent_not_configured', msg, extras);
      return new GatewayError('libvirt_error', msg, extras);
    case VirErrorCode.AGENT_UNRESPONSIVE:
      if (/not connected/.test(msg)) return new GatewayError('agent_not_connected', msg, { ...extras, retryAfter: 5 });
      return new GatewayError('agent_unresponsive', msg, { ...extras, retryAfter: 5 });
    case VirErrorCode.OPERATION_TIMEOUT:
      // Someone outside the gateway (virsh, another tool) holds the domain's agent job.
      return new GatewayError('agent_busy', msg, { ...extras, retryAfter: 5 });
    case VirErrorCode.AGENT_COMMAND_TIMEOUT:
      return new GatewayError('deadline_exceeded', msg, extras);
    case VirErrorCode.INTERNAL_ERROR:
    case VirErrorCode.AGENT_COMMAND_FAILED: {
      const m = AGENT_ERROR_RE.exec(msg);
      if (m) {
        const desc = m[2] ?? '';
        return agentError(m[1]!, desc, agentClassFromDesc(desc.trim()), extras);
      }
      return new GatewayError('libvirt_error', msg, extras);
    }
    default:
      return new GatewayError('libvirt_error', msg, extras);
  }
}
