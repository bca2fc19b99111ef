// The scope each guest-agent command stands for, so that the raw endpoint (scope `admin`) is no way around
// the others: a raw command needs `admin` and the scope of the resource route that sends the same command.
// Commands this table does not know (newer than it) need `admin` alone. test/unit/raw-authorization.test.ts
// checks this table against the commands every route's OpenAPI description names.
import { openModeAccess } from '../agent/commands/files.js';
import type { Scope } from '../config/scopes.js';

/** Every one of `all`, and at least one of `any` when it is given. */
export interface ScopeNeed {
  all: Scope[];
  any?: Scope[];
}

const BY_COMMAND: Record<string, Scope> = {
  'guest-ping': 'read',
  'guest-info': 'read',
  'guest-get-time': 'read',
  'guest-get-timezone': 'read',
  'guest-get-host-name': 'read',
  'guest-get-osinfo': 'read',
  'guest-get-users': 'read',
  'guest-get-vcpus': 'read',
  'guest-get-memory-blocks': 'read',
  'guest-get-memory-block-info': 'read',
  'guest-get-fsinfo': 'read',
  'guest-get-disks': 'read',
  'guest-get-diskstats': 'read',
  'guest-get-cpustats': 'read',
  'guest-get-load': 'read',
  'guest-get-devices': 'read',
  'guest-network-get-interfaces': 'read',
  'guest-network-get-route': 'read',
  'guest-fsfreeze-status': 'read',
  'guest-set-time': 'power',
  'guest-set-vcpus': 'power',
  'guest-set-memory-blocks': 'power',
  'guest-shutdown': 'power',
  'guest-suspend-disk': 'power',
  'guest-suspend-ram': 'power',
  'guest-suspend-hybrid': 'power',
  'guest-fsfreeze-freeze': 'freeze',
  'guest-fsfreeze-freeze-list': 'freeze',
  'guest-fsfreeze-thaw': 'freeze',
  'guest-fstrim': 'freeze',
  'guest-exec': 'exec',
  'guest-exec-status': 'exec',
  'guest-set-user-password': 'accounts',
  'guest-ssh-get-authorized-keys': 'accounts',
  'guest-ssh-add-authorized-keys': 'accounts',
  'guest-ssh-remove-authorized-keys': 'accounts',
  'guest-file-read': 'files:read',
  'guest-file-write': 'files:write',
  'guest-file-flush': 'files:write',
};

/** The scopes beside `admin` a raw command needs. */
export function rawCommandScopes(execute: string, args: Record<string, unknown> | undefined): ScopeNeed {
  if (execute === 'guest-file-open') {
    const { read, write } = openModeAccess(args?.mode);
    return { all: [...(read ? (['files:read'] as const) : []), ...(write ? (['files:write'] as const) : [])] };
  }
  // Moving or closing a handle needs whichever file scope opened it.
  if (execute === 'guest-file-seek' || execute === 'guest-file-close') return { all: [], any: ['files:read', 'files:write'] };
  return { all: Object.hasOwn(BY_COMMAND, execute) ? [BY_COMMAND[execute]!] : [] };
}

/** The commands this table knows, for its test. */
export const KNOWN_RAW_COMMANDS = [...Object.keys(BY_COMMAND), 'guest-file-open', 'guest-file-seek', 'guest-file-close'];
