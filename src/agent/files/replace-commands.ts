// The programs the gateway runs in a guest (guest-exec) to finish or undo an atomic upload: qemu-ga has no
// rename command. Each is a fixed program with a fixed script; the guest paths travel as separate arguments
// (POSIX: "$1" and "$2" of sh -c) or as quoted literals inside a base64-encoded script (Windows PowerShell's
// -EncodedCommand), never spliced into a command line a shell would parse.
import type { GuestProgram } from '../exec/guest-program.js';

/** 'windows' when guest-get-osinfo says mswindows (or, without that command, the path has a drive letter). */
export type GuestOsFamily = 'posix' | 'windows';

/** Exit statuses of the replace program (both families). */
export const REPLACE_EXIT = { ok: 0, symlink: 3, notRegular: 4, moveFailed: 5, tempReplaced: 6 } as const;

/**
 * POSIX, as root in a directory others may write:
 * - refuse a target that is a symbolic link (mv would replace the link), a directory (mv would move the file
 *   into it) or any other non-regular file (a device, FIFO or socket would become a plain file);
 * - open the temporary file once (fd 3) and make sure it is still the file qemu-ga wrote: the inode now at
 *   its name, one link, owned by this user, of the size written. Someone who swapped it for a link (to
 *   /etc/shadow, say) or another file is refused (exit 6);
 * - through that descriptor only (/proc/self/fd/3), never the name again: give it the target's owner and mode
 *   (when the target is a regular file) and push its data to disk (a rename is only as durable as the data);
 * - rename it over the target. Prints what it kept: 'owner', 'mode', or 'new' for a target that did not
 *   exist. Every refusal removes the temporary file. GNU coreutils and busybox alike (stat -c, sync FILE).
 */
const POSIX_REPLACE = [
  't=$1; f=$2; n=$3',
  'if [ -L "$f" ]; then rm -f -- "$t"; exit 3; fi',
  'if [ -e "$f" ] && [ ! -f "$f" ]; then stat -c %F -- "$f" >&2; rm -f -- "$t"; exit 4; fi',
  'exec 3< "$t" || exit 6',
  'me=$(stat -c %d:%i -- "$t"):1:$(id -u):$n',
  'if [ "$(stat -L -c %d:%i:%h:%u:%s /proc/self/fd/3)" != "$me" ]; then rm -f -- "$t"; exit 6; fi',
  's=$(stat -c \'%F|%u:%g|%a\' -- "$f" 2>/dev/null)',
  'case "$s" in',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: POSIX shell parameter expansion (owner and mode cut out of $s), not a JS template
  '  regular*) o=${s#*|}; o=${o%|*}; m=${s##*|}',
  '    chown -- "$o" /proc/self/fd/3 2>/dev/null && echo owner',
  '    chmod -- "$m" /proc/self/fd/3 2>/dev/null && echo mode ;;',
  '  *) echo new ;;',
  'esac',
  'sync -- /proc/self/fd/3 2>/dev/null',
  // -T: a target made a directory since the check above fails the rename instead of receiving the file.
  'mv -f -T -- "$t" "$f" || { rm -f -- "$t"; exit 5; }',
].join('\n');

/** $0 of the script: the name ps shows in the guest. */
const SCRIPT_NAME = 'qga-gateway-replace';

const POWERSHELL = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';

/** A PowerShell single-quoted literal: every quote character PowerShell accepts as one is doubled. */
export function powershellLiteral(text: string): string {
  return `'${text.replace(/['\u2018\u2019\u201a\u201b]/g, '$&$&')}'`;
}

function powershell(script: string): GuestProgram {
  return {
    path: POWERSHELL,
    args: [
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-EncodedCommand',
      Buffer.from(script, 'utf16le').toString('base64'),
    ],
  };
}

/**
 * Windows: File.Replace keeps the target's ACL, attributes and creation time; a reparse point (link) or a
 * directory is refused as on POSIX. Not run by this project's tests: no Windows guest runs here.
 */
function windowsReplace(temp: string, target: string, bytes: number): GuestProgram {
  return powershell(
    [
      `$ErrorActionPreference = 'Stop'; $t = ${powershellLiteral(temp)}; $f = ${powershellLiteral(target)}`,
      'if (Test-Path -LiteralPath $f -PathType Container) { Remove-Item -LiteralPath $t -Force; exit 4 }',
      '$i = Get-Item -LiteralPath $f -Force -ErrorAction SilentlyContinue',
      'if ($i -and ($i.Attributes -band [IO.FileAttributes]::ReparsePoint)) { Remove-Item -LiteralPath $t -Force; exit 3 }',
      // The temporary file as written: not swapped for a link (reparse point) or another file meanwhile.
      '$n = Get-Item -LiteralPath $t -Force',
      `if (($n.Attributes -band [IO.FileAttributes]::ReparsePoint) -or $n.PSIsContainer -or $n.Length -ne ${bytes}) ` +
        `{ Remove-Item -LiteralPath $t -Force; exit 6 }`,
      "try { if ($i) { [IO.File]::Replace($t, $f, $null); 'owner'; 'mode' } else { [IO.File]::Move($t, $f); 'new' } }",
      'catch { Remove-Item -LiteralPath $t -Force -ErrorAction SilentlyContinue; [Console]::Error.WriteLine($_.Exception.Message); exit 5 }',
    ].join('\n'),
  );
}

/** bytes: what the upload wrote, which the temporary file must still hold. */
export function replaceProgram(os: GuestOsFamily, temp: string, target: string, bytes: number): GuestProgram {
  if (os === 'windows') return windowsReplace(temp, target, bytes);
  return { path: '/bin/sh', args: ['-c', POSIX_REPLACE, SCRIPT_NAME, temp, target, String(bytes)] };
}

/** Removes a temporary file; succeeds when it is absent. */
export function removeProgram(os: GuestOsFamily, temp: string): GuestProgram {
  if (os === 'windows')
    return powershell(
      `Remove-Item -LiteralPath ${powershellLiteral(temp)} -Force -ErrorAction SilentlyContinue; ` +
        `if (Test-Path -LiteralPath ${powershellLiteral(temp)}) { exit 1 }`,
    );
  return { path: '/bin/rm', args: ['-f', '--', temp] };
}

/** What the replace program said it kept of the old file. */
export function keptFromOutput(stdout: string): { created: boolean; mode: boolean; owner: boolean } {
  const words = new Set(stdout.split(/\s+/).filter(Boolean));
  return { created: words.has('new'), mode: words.has('mode'), owner: words.has('owner') };
}
