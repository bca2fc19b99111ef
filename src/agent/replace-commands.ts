// The programs the gateway runs in a guest (guest-exec) to finish or undo an atomic upload: qemu-ga has no
// rename command. Each is a fixed program with a fixed script; the guest paths travel as separate arguments
// (POSIX: "$1" and "$2" of sh -c) or as quoted literals inside a base64-encoded script (Windows PowerShell's
// -EncodedCommand), never spliced into a command line a shell would parse.

/** 'windows' when guest-get-osinfo says mswindows (or, without that command, the path has a drive letter). */
export type GuestOsFamily = 'posix' | 'windows';

export interface GuestProgram {
  path: string;
  args: string[];
}

/** Exit statuses of the replace program (both families). */
export const REPLACE_EXIT = { ok: 0, symlink: 3, directory: 4, moveFailed: 5 } as const;

/**
 * POSIX: refuse a target that is a symbolic link or a directory (mv would replace the link, or move the file
 * into the directory); give the temporary file the target's owner and mode; push its data to disk (a rename
 * is only as durable as the bytes it points at); rename it over the target. Prints what it kept: 'owner',
 * 'mode', or 'new' for a target that did not exist. Every failure removes the temporary file. Works with
 * GNU coreutils and busybox alike (stat -c, chown/chmod, sync FILE).
 */
const POSIX_REPLACE = [
  't=$1; f=$2',
  'if [ -L "$f" ]; then rm -f -- "$t"; exit 3; fi',
  'if [ -d "$f" ]; then rm -f -- "$t"; exit 4; fi',
  'if [ -e "$f" ]; then',
  '  o=$(stat -c %u:%g -- "$f" 2>/dev/null) && chown -- "$o" "$t" 2>/dev/null && echo owner',
  '  m=$(stat -c %a -- "$f" 2>/dev/null) && chmod -- "$m" "$t" 2>/dev/null && echo mode',
  'else echo new; fi',
  'sync -- "$t" 2>/dev/null',
  'mv -f -- "$t" "$f" || { rm -f -- "$t"; exit 5; }',
].join('\n');

/** $0 of the script: the name ps shows in the guest. */
const SCRIPT_NAME = 'qga-gateway-replace';

const POWERSHELL = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';

/** A PowerShell single-quoted literal: every quote character PowerShell accepts as one is doubled. */
export function powershellLiteral(text: string): string {
  return `'${text.replace(/['\u2018\u2019\u201a\u201b]/g, '$&$&')}'`;
}

function powershell(script: string): GuestProgram {
  return { path: POWERSHELL, args: ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand', Buffer.from(script, 'utf16le').toString('base64')] };
}

/**
 * Windows: File.Replace keeps the target's ACL, attributes and creation time; a reparse point (link) or a
 * directory is refused as on POSIX. Not run by this project's tests: no Windows guest runs here.
 */
function windowsReplace(temp: string, target: string): GuestProgram {
  return powershell(
    [
      `$ErrorActionPreference = 'Stop'; $t = ${powershellLiteral(temp)}; $f = ${powershellLiteral(target)}`,
      'if (Test-Path -LiteralPath $f -PathType Container) { Remove-Item -LiteralPath $t -Force; exit 4 }',
      '$i = Get-Item -LiteralPath $f -Force -ErrorAction SilentlyContinue',
      'if ($i -and ($i.Attributes -band [IO.FileAttributes]::ReparsePoint)) { Remove-Item -LiteralPath $t -Force; exit 3 }',
      "try { if ($i) { [IO.File]::Replace($t, $f, $null); 'owner'; 'mode' } else { [IO.File]::Move($t, $f); 'new' } }",
      'catch { Remove-Item -LiteralPath $t -Force -ErrorAction SilentlyContinue; [Console]::Error.WriteLine($_.Exception.Message); exit 5 }',
    ].join('\n'),
  );
}

export function replaceProgram(os: GuestOsFamily, temp: string, target: string): GuestProgram {
  if (os === 'windows') return windowsReplace(temp, target);
  return { path: '/bin/sh', args: ['-c', POSIX_REPLACE, SCRIPT_NAME, temp, target] };
}

/** Removes a temporary file; succeeds when it is absent. */
export function removeProgram(os: GuestOsFamily, temp: string): GuestProgram {
  if (os === 'windows') return powershell(`Remove-Item -LiteralPath ${powershellLiteral(temp)} -Force -ErrorAction SilentlyContinue; if (Test-Path -LiteralPath ${powershellLiteral(temp)}) { exit 1 }`);
  return { path: '/bin/rm', args: ['-f', '--', temp] };
}

/** What the replace program said it kept of the old file. */
export function keptFromOutput(stdout: string): { created: boolean; mode: boolean; owner: boolean } {
  const words = new Set(stdout.split(/\s+/).filter(Boolean));
  return { created: words.has('new'), mode: words.has('mode'), owner: words.has('owner') };
}
