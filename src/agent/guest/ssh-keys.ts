// OpenSSH public key lines (authorized_keys without options): "type base64-blob [comment]". Checked before
// anything reaches the agent, whose own check is only "no newline, not a comment".
const KEY_TYPES = new Set([
  'ssh-rsa',
  'ssh-dss',
  'ssh-ed25519',
  'ssh-ed448',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
  'rsa-sha2-256',
  'rsa-sha2-512',
]);

function knownType(type: string): boolean {
  return KEY_TYPES.has(type) || KEY_TYPES.has(type.replace(/-cert-v01@openssh\.com$/, ''));
}

export interface AuthorizedKey {
  line: string;
  /** null when the line has options (command="...", from=...) or an unknown type. */
  type: string | null;
  comment: string | null;
}

/** Why `line` is not an OpenSSH public key line, or null when it is one. */
export function sshKeyProblem(line: string): string | null {
  if (/[\r\n\0]/.test(line)) return 'must be one line (no CR, LF or NUL)';
  // The agent writes the line as it is into authorized_keys: no terminal escapes or other control characters (tab is whitespace).
  if (/[\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(line)) return 'must not contain control characters';
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: (.*))?$/.exec(line.trim());
  if (!m) return 'must be "type base64-key [comment]" (options are not accepted)';
  const [, type, blob] = m as unknown as [string, string, string];
  if (!knownType(type)) return `unknown key type ${JSON.stringify(type.slice(0, 64))}`;
  // The blob starts with the key type again, as a length-prefixed string: a cheap proof it is a key of that type.
  const bytes = Buffer.from(blob, 'base64');
  if (bytes.length < 4) return 'the key data is too short';
  const n = bytes.readUInt32BE(0);
  if (n > bytes.length - 4 || bytes.subarray(4, 4 + n).toString('latin1') !== type) return `the key data is not a ${type} key`;
  return null;
}

/** Type and comment of a line as the agent returns it; null type when it has options or is not a plain key. */
export function describeKeyLine(line: string): AuthorizedKey {
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: (.*))?$/.exec(line.trim());
  if (!m || !knownType(m[1]!)) return { line, type: null, comment: null };
  return { line, type: m[1]!, comment: m[3]?.trim() || null };
}
