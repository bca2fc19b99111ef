// What the gateway reads from the guest agent's errors. qemu-ga's {"error": {"class", "desc"}} has a class
// (CommandNotFound, GenericError) and free text; libvirt passes only the text on ("unable to execute QEMU agent
// command 'X': desc", the class is lost), so the text is all there is on that path. Each pattern below covers
// the wording of every agent version known, with the versions' texts as recorded (test/fixtures/qga/) or read in
// QEMU's source; test/unit/agent-errors.test.ts checks each one.
import { COMMAND_NOT_FOUND } from '../../domains/backend-errors.js';
import { GatewayError } from '../../errors.js';

export const AGENT_ERROR_TEXT = {
  /**
   * guest-exec-status of a pid the agent does not know (or has reaped): up to 8.1 "Invalid parameter 'pid'"; 8.2+
   * "PID ld does not exist" (a format bug: "PID " PRId64 without %).
   */
  unknownPid: /Invalid parameter 'pid'|^PID \S+ does not exist/,
  /**
   * guest-exec of a program that cannot start, GLib's g_spawn message: 7.2 wraps it ("Guest agent command failed,
   * error was 'Failed to execute child process “/x” (No such file or directory)'"), 10.0 passes it as it is.
   * The group is the errno text.
   */
  spawnFailed: /Failed to execute child process .*\((.+)\)\s*'?$/,
  /** guest-ssh-*-authorized-keys and guest-set-user-password for a user the guest lacks: "failed to lookup user 'x': Success" (7.2, 10.0). */
  userNotFound: /failed to lookup user/,
  /**
   * guest-ssh-get-authorized-keys of a user without the file: "failed to read '/h/.ssh/authorized_keys': Failed to
   * open file “…”: No such file or directory" (7.2, 10.0).
   */
  noAuthorizedKeysFile: /failed to read .*No such file or directory/,
  /**
   * guest-set-user-password without chpasswd in the guest: 7.2 "cannot find 'passwd' program in PATH" (it looks
   * chpasswd up first); 9.1+ runs it and reports "child process has failed to set user password: failed to exec
   * 'chpasswd': No such file or directory".
   */
  passwordProgramMissing: /cannot find '[^']+' program in PATH|failed to exec '[^']+': No such file or directory/,
  /**
   * guest-set-user-password when chpasswd ran and failed: "child process has failed to set user password" (7.2,
   * 10.0), with chpasswd's own text after it in 10.0 ("chpasswd: (user x) pam_chauthtok() failed, ..."). An unknown
   * user and any other PAM refusal read alike.
   */
  passwordChangeFailed: /^child process has failed to set user password/,
  /** guest-file-* errno texts (error_setg_errno: "failed to open file '/x' (mode: 'r'): No such file or directory"; 7.2, 10.0). */
  fileNotFound: /No such file or directory|Not a directory/,
  filePermission: /Permission denied|Operation not permitted|Read-only file system/,
  fileIsDirectory: /Is a directory/,
  /** guest-file-seek refused: "failed to seek file: Invalid argument" (7.2, 10.0; also a negative position), "Illegal seek" (pipes). */
  seekRefused: /Invalid argument|Illegal seek/,
  /**
   * guest-set-time refused by the guest: "Failed to set time to guest: Invalid argument" (settimeofday's EINVAL, 7.2
   * and 10.0); QAPI's "Value '...' is too large for parameter 'time'"; "... is invalid".
   */
  timeRefused: /Invalid argument|is too large|is invalid/,
  /** guest-set-vcpus: "logical processor #1 can't be offlined" (7.2, 10.0). */
  vcpuCannotOffline: /can't be offlined/,
  /** guest-suspend-*: "the requested suspend mode is not supported by the guest" (7.2, 10.0). */
  suspendNotSupported: /not supported/i,
  /**
   * Arguments the agent's QAPI schema refuses (qapi/qobject-input-visitor.c, the same in 7.2 and 10.0): "Parameter
   * 'path' is missing", "Parameter 'bogus' is unexpected", "Invalid parameter type for 'pid', expected: integer"
   * (7.2 for a capture-output mode, which only 8.0+ takes: "... 'capture-output', expected: boolean"), and the
   * visitor's range and enum refusals.
   */
  badArguments: new RegExp(
    [
      /^Parameter '[^']*' (is missing|is unexpected|expects |does not accept value )/,
      /^Parameters '[^']*' are unexpected/,
      /^Invalid parameter type for '[^']*', expected: /,
      /^Value '.*' is too large for parameter '[^']*'/,
    ]
      .map((re) => re.source)
      .join('|'),
  ),
} as const;

export type AgentErrorText = keyof typeof AGENT_ERROR_TEXT;

/** The agent's description when `err` is the agent's own error (agent_error), else null. */
export function agentDesc(err: unknown): string | null {
  return err instanceof GatewayError && err.code === 'agent_error' ? (err.extras.agentDesc ?? '') : null;
}

/** Whether `err` is the agent's own error and its text says `what`. */
export function isAgentError(err: unknown, what: AgentErrorText): err is GatewayError {
  const desc = agentDesc(err);
  return desc !== null && AGENT_ERROR_TEXT[what].test(desc);
}

/** The agent refused the command as disabled (blocked with -b, or while its file systems are frozen): class CommandNotFound, and not "not found". */
export function isCommandDisabled(err: unknown): err is GatewayError {
  const desc = agentDesc(err);
  if (desc === null || !(err instanceof GatewayError)) return false;
  return err.extras.agentClass === 'CommandNotFound' && !COMMAND_NOT_FOUND.test(desc);
}
