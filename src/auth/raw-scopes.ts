// The scope each guest-agent command stands for, so that the raw endpoint (scope `admin`) is no way around
// the others: a raw command needs `admin` and the scope of the resource route that sends the same command, as
// the command catalogue records it (rawScope, src/agent/commands/). Commands it does not know (newer than it)
// need `admin` alone. test/unit/auth.test.ts checks the catalogue against the commands every route's OpenAPI
// description names.
import { openModeAccess } from '../agent/commands/files.js';
import { CATALOGUE, commandFacts } from '../agent/commands/index.js';
import type { Scope } from '../config/scopes.js';

/** Every one of `all`, and at least one of `any` when it is given. */
export interface ScopeNeed {
  all: Scope[];
  any?: Scope[];
}

/** The scopes beside `admin` a raw command needs: its catalogue entry's rawScope (src/agent/commands/). */
export function rawCommandScopes(execute: string, args: Record<string, unknown> | undefined): ScopeNeed {
  const scope = commandFacts(execute)?.rawScope;
  if (scope === undefined) return { all: [] };
  if (scope === 'open-mode') {
    const { read, write } = openModeAccess(args?.mode);
    return { all: [...(read ? (['files:read'] as const) : []), ...(write ? (['files:write'] as const) : [])] };
  }
  if (typeof scope === 'object') return { all: [], any: [...scope.anyOf] };
  return { all: [scope] };
}

/** The commands the catalogue gives a scope, for this table's test. */
export const KNOWN_RAW_COMMANDS = CATALOGUE.filter((c) => c.rawScope !== undefined).map((c) => c.execute);
