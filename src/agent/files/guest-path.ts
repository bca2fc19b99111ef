// The one rule for a guest path the gateway sends to an agent, from a file route's URL or a raw
// guest-file-open alike: absolute, no '.' or '..' segments, no trailing separator, no control characters.
// Policies (src/auth/policies.ts) compare paths in this form, so a path that passes here means what it says.
import { GatewayError } from '../../errors.js';

/** Linux PATH_MAX; Windows' long paths are shorter than this in practice. */
export const GUEST_PATH_MAX = 4096;

const WINDOWS_DRIVE = /^[A-Za-z]:/;
// 0x00-0x1f and 0x7f: no real file needs them, and a newline or NUL in a path has made it mean one thing to a
// policy pattern and another to the guest.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws 400 invalid_request unless `path` is an absolute guest path as above; answers it unchanged. */
export function guestPath(path: string): string {
  if (path === '')
    throw new GatewayError(
      'invalid_request',
      'the file path is empty: use /domains/{domain}/files/{absolute path without its leading slash}',
    );
  if (CONTROL.test(path)) throw new GatewayError('invalid_request', 'the file path contains a control character (0x00-0x1f or 0x7f)');
  const windows = WINDOWS_DRIVE.test(path);
  if (windows && !/^[A-Za-z]:[/\\]/.test(path))
    throw new GatewayError(
      'invalid_request',
      `'${path}' is relative to the current directory of drive ${path.slice(0, 2)}: give C:/dir/file`,
    );
  if (!windows && !path.startsWith('/')) throw new GatewayError('invalid_request', `the file path '${path}' is not absolute`);
  // '.' and '..' would make the path relative to something the caller did not name; the agent would resolve them.
  if (path.split(/[/\\]/).some((s) => s === '.' || s === '..'))
    throw new GatewayError('invalid_request', `the file path '${path}' has '.' or '..' segments: give an absolute path without them`);
  // Other spellings Windows resolves to the same file, which a policy pattern would not see as such: a device or
  // UNC prefix (//?/C:/x, \\server\x), an NTFS stream (x::$DATA), a segment ending in '.' or ' ' (Win32 drops them).
  if (/^[/\\]{2,}[?.][/\\]/.test(path) || path.startsWith('\\\\'))
    throw new GatewayError('invalid_request', `the file path '${path}' is a device or UNC path: give a drive path`);
  if (windows && path.slice(2).includes(':'))
    throw new GatewayError('invalid_request', `the file path '${path}' names an alternate data stream (':' after the drive)`);
  if (windows && path.split(/[/\\]/).some((s) => /[. ]$/.test(s)))
    throw new GatewayError('invalid_request', `the file path '${path}' has a segment ending in '.' or ' ', which Windows drops`);
  if (path.endsWith('/') || path.endsWith('\\'))
    throw new GatewayError('invalid_request', `the file path '${path}' ends with a separator: name a file`);
  if (Buffer.byteLength(path) > GUEST_PATH_MAX)
    throw new GatewayError('invalid_request', `the file path is longer than ${GUEST_PATH_MAX} bytes`);
  return path;
}
