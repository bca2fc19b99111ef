// The one place where what the two backends raise becomes the gateway's errors (GatewayError: a code, and with it
// the HTTP status, the problem's fields and Retry-After). Each backend raises its own: libvirt's wire client a
// LibvirtError (libvirtd's virErrorNumber and message) or a ConnectionError, the agent sockets an AgentSocketError
// (src/agent-socket/errors.ts). backendError() takes either, from an agent call (the agent service, through either
// transport) or from a domain lookup (the directory), and passes a GatewayError through as it is. Here too: the
// agent's own errors, which libvirt folds into its message text and the socket hands over as they came.
import { AgentSocketError, type AgentSocketErrorCode } from '../agent-socket/errors.js';
import { GatewayError, type ErrorCode, type ErrorExtras } from '../errors.js';
import { ConnectionError, LibvirtError } from '../libvirt/errors.js';
import { VirErrorCode } from '../libvirt/protocol.js';

type Context = { domain?: string; command?: string };

/** What the caller of an agent call or a lookup sees of whatever failed: see the top of this file. */
export function backendError(err: unknown, context: Context = {}): GatewayError {
  if (err instanceof AgentSocketError) return mapAgentSocketError(err);
  return mapLibvirtError(err, context);
}

/** Seconds a caller is told to wait (Retry-After) when an agent socket could not be used. */
const SOCKET_RETRY_AFTER_S = 5;

const SOCKET_ERRORS: Record<AgentSocketErrorCode, { code: ErrorCode; retry?: true }> = {
  not_connected: { code: 'agent_not_connected', retry: true },
  busy: { code: 'agent_busy', retry: true },
  unresponsive: { code: 'agent_unresponsive', retry: true },
  reply_too_large: { code: 'agent_reply_too_large' },
  reply_invalid: { code: 'agent_reply_invalid' },
  closed: { code: 'shutting_down' },
  bad_command: { code: 'invalid_request' },
  no_such_domain: { code: 'domain_not_found' },
  not_running: { code: 'domain_not_running' },
};

/** An agent socket's error names the domain and host itself when the host raised it, and nothing when one channel did. */
export function mapAgentSocketError(err: AgentSocketError): GatewayError {
  const { code, retry } = SOCKET_ERRORS[err.code];
  const { domain, host } = err.about;
  return new GatewayError(code, err.message, {
    ...(domain !== undefined ? { domain } : {}),
    ...(host !== undefined ? { host } : {}),
    ...(retry ? { retryAfter: SOCKET_RETRY_AFTER_S } : {}),
  });
}

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

/** libvirt's side of backendError(); anything else that is not a GatewayError is an internal error. */
export function mapLibvirtError(err: unknown, context: Context = {}): GatewayError {
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
