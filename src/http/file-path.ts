// The guest path named by the URL of a file route: /domains/{domain}/files/{path}. The wildcard part, already
// percent-decoded by the router, is the path without its leading '/': /files/etc/os-release is /etc/os-release.
// A Windows guest's path starts with its drive letter: /files/C:/Windows/win.ini is C:/Windows/win.ini (Windows
// takes '/' as a separator; %5C for '\' works too).
import { guestPath } from '../agent/files/guest-path.js';

const WINDOWS_DRIVE = /^[A-Za-z]:/;

export function guestPathFromUrl(rest: string | undefined): string {
  const raw = rest ?? '';
  return guestPath(raw === '' || WINDOWS_DRIVE.test(raw) ? raw : `/${raw}`);
}
