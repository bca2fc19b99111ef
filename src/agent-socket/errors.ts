// What the agent-socket backend raises: its own error, whose code says what happened at the socket. How a caller
// is answered (status, problem code, Retry-After) is decided elsewhere, in one place for both backends:
// src/domains/backend-errors.ts.

export type AgentSocketErrorCode =
  /** Nothing listens on the socket, it refused, connecting took too long, or it closed under a call. */
  | 'not_connected'
  /** Another client holds the socket: no byte back to the resynchronisation on a fresh connection, or a full backlog. */
  | 'busy'
  /** An established channel stopped answering (or keeps sending what nobody asked for). */
  | 'unresponsive'
  /** A reply longer than agentSockets.maxReplyBytes: refused, and the channel resynchronised. */
  | 'reply_too_large'
  /** A reply that is not a JSON object. */
  | 'reply_invalid'
  /** The channel, or the whole host, is closing. */
  | 'closed'
  /** What was handed over to send is not one JSON object on one line, or not a sync command. */
  | 'bad_command'
  /** The host has no socket by that name or UUID (any more). */
  | 'no_such_domain'
  /** The domain's socket is gone: QEMU is not running. */
  | 'not_running';

export class AgentSocketError extends Error {
  override name = 'AgentSocketError';

  constructor(
    readonly code: AgentSocketErrorCode,
    message: string,
    /** The domain and host concerned, when the host (not one channel) raised it. */
    readonly about: { domain?: string; host?: string } = {},
  ) {
    super(message);
  }
}
