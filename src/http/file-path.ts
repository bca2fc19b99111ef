// The guest path named by the URL of a file route: /domains/{domain}/files/{path}. The wildcard part, already
// percent-decoded by the router, is the path without its leading '/': /files/etc/os-release is /etc/os-release.
// A Windows guest's path starts with its drive letter: /files/C:/Windows/win.ini is C:/Windows/win.ini (Windows
// takes '/' as a separator; %5C for '\' works too).
import { GatewayError } from '../errors.js';

/** Linux PATH_MAX; Windows' long paths are shorter than this in practice. */
export const GUEST_PATH_MAX = 4096;

const WINDOWS_DRIVE = /^[A-Za-z]:/;

export function guestPathFromUrl(rest: string | undefined): string {
  const raw = rest ?? '';
  if (raw === '') throw new GatewayError('invalid_request', 'the file path is empty: use /domains/{domain}/files/{absolute path without its leading slash}');
  if (raw.includes('\u0000')) throw new GatewayError('invalid_request', 'the file path contains a NUL byte');
  const windows = WINDOWS_DRIVE.test(raw);
  if (windows && !/^[A-Za-z]:[/\\]/.test(raw)) throw new GatewayError('invalid_request', `'${raw}' is relative to the current directory of drive ${raw.slice(0, 2)}: give C:/dir/file`);
  const path = windows ? raw : `/${raw}`;
  // '.' and '..' would make the path relative to something the caller did not name; the agent would resolve them.
  const segments = path.split(/[/\\]/);
  if (segments.some((s) => s === '.' || s === '..')) throw new GatewayError('invalid_request', `the file path '${path}' has '.' or '..' segments: give an absolute path without them`);
  if (path.endsWith('/') || path.endsWith('\\')) throw new GatewayError('invalid_request', `the file path '${path}' ends with a separator: name a file`);
  if (Buffer.byteLength(path) > GUEST_PATH_MAX) throw new GatewayError('invalid_request', `the file path is longer than ${GUEST_PATH_MAX} bytes`);
  return path;
}
