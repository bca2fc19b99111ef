// The gateway's typed errors. Every failure a caller can see has a stable code; this table alone decides its HTTP status.

export const ERROR_STATUS = {
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  permission_denied: 403,
  command_forbidden: 403,
  not_found: 404,
  domain_not_found: 404,
  host_not_found: 404,
  file_not_found: 404,
  process_not_found: 404,
  user_not_found: 404,
  domain_not_running: 409,
  state_conflict: 409,
  /** A name found on several hosts: the caller must qualify it as host:name. */
  domain_ambiguous: 409,
  /** An atomic upload's target is a directory or a symbolic link: replacing it would not write the file meant. */
  not_a_regular_file: 409,
  /** The request line, headers or body did not arrive within limits.headersTimeoutMs / requestTimeoutMs. */
  request_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  headers_too_large: 431,
  /** Too many requests from one identity (or one address, on public routes) in the window. */
  rate_limited: 429,
  /** nginx's convention: nobody receives this answer, but the request log says what happened. */
  client_gone: 499,
  command_not_supported: 501,
  suspend_not_supported: 501,
  guest_program_missing: 501,
  /** The agent cannot run the gateway's rename (guest-exec blocked or disabled): ?atomic=false writes in place. */
  atomic_replace_unavailable: 501,
  agent_error: 502,
  agent_reply_invalid: 502,
  agent_reply_too_large: 502,
  libvirt_error: 502,
  agent_not_configured: 503,
  agent_not_connected: 503,
  agent_unresponsive: 503,
  agent_busy: 503,
  agent_queue_full: 503,
  libvirt_unavailable: 503,
  /** The host a domain is (or may be) on is not reachable; other hosts' domains still answer. */
  host_unavailable: 503,
  shutting_down: 503,
  /** events.maxClients event streams are open already. */
  too_many_streams: 503,
  /** state.dir cannot be written: a freeze is not taken unrecorded. */
  state_unavailable: 503,
  /** Keystone (auth.keystone) could not say whether an X-Auth-Token is valid: down, too slow, or an answer not understood. */
  auth_unavailable: 503,
  deadline_exceeded: 504,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_TITLES: Record<ErrorCode, string> = {
  invalid_request: 'Invalid request',
  unauthenticated: 'A valid bearer token is required',
  forbidden: 'This token may not do that',
  permission_denied: 'The guest refused access',
  command_forbidden: 'That command is not allowed here',
  not_found: 'Not found',
  domain_not_found: 'Domain not found',
  host_not_found: 'No libvirt host by that name',
  file_not_found: 'No such file in the guest',
  process_not_found: 'No such process',
  user_not_found: 'No such user in the guest',
  domain_not_running: 'Domain is not running',
  state_conflict: 'The guest is not in a state that allows this',
  domain_ambiguous: 'Several hosts have a domain by that name: qualify it as host:name',
  not_a_regular_file: 'The target is not a regular file',
  request_timeout: 'The request did not arrive in time',
  payload_too_large: 'Request body too large',
  unsupported_media_type: 'Unsupported media type',
  range_not_satisfiable: 'Range not satisfiable',
  headers_too_large: 'Request headers too large',
  client_gone: 'The client closed the connection before the answer',
  command_not_supported: 'The guest agent does not offer this command',
  suspend_not_supported: 'The guest cannot suspend in this mode',
  guest_program_missing: 'The guest lacks a program the agent needs for this',
  atomic_replace_unavailable: 'The guest agent cannot replace a file in one step',
  rate_limited: 'Too many requests',
  agent_error: 'The guest agent reported an error',
  agent_reply_invalid: 'The guest agent sent a reply the gateway does not understand',
  agent_reply_too_large: "The guest agent's reply was too large for libvirt",
  libvirt_error: 'libvirt reported an error',
  agent_not_configured: 'The domain has no guest agent channel',
  agent_not_connected: 'The guest agent is not connected',
  agent_unresponsive: 'The guest agent is not responding',
  agent_busy: 'The guest agent is busy with another client',
  agent_queue_full: 'Too many commands queued for this domain',
  libvirt_unavailable: 'libvirt is not reachable',
  host_unavailable: "The domain's libvirt host is not reachable",
  shutting_down: 'The gateway is shutting down',
  too_many_streams: 'Too many event streams are open',
  state_unavailable: 'The gateway cannot record what it must keep across a restart',
  auth_unavailable: 'The identity service cannot validate the token now',
  deadline_exceeded: 'The deadline passed before the guest agent answered',
  internal_error: 'Internal error',
};

export interface ErrorExtras {
  /** Seconds; sent as Retry-After. */
  retryAfter?: number;
  /** The agent's error class and description, for agent_error. */
  agentClass?: string;
  agentDesc?: string;
  /** libvirt's virErrorNumber, when libvirt raised it. */
  libvirtCode?: number;
  domain?: string;
  /** The libvirt host concerned (host_unavailable, host_not_found). */
  host?: string;
  /** For domain_ambiguous: the qualified ids (host:name) that match. */
  candidates?: string[];
  command?: string;
  /** qemu-ga's version, for command_not_supported. */
  agentVersion?: string;
  /** A failed upload: bytes the guest agent wrote before it stopped (atomic: into the temporary file, since removed). */
  bytesWritten?: number;
  /** A failed atomic upload whose temporary file could not be removed: its guest path. */
  leftBehind?: string;
  /** For unauthenticated: a token was sent (and refused); goes into WWW-Authenticate, not the body. */
  tokenSent?: boolean;
}

export class GatewayError extends Error {
  override name = 'GatewayError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extras: ErrorExtras = {},
  ) {
    super(message);
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}
