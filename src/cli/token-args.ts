// The command line of `npm run token`: NAME [SCOPE...] and -h/--help, read by node:util's parseArgs so that a
// flag is never taken for a name. A name or scope the gateway's config would refuse is refused here too, before a
// token is made for an entry no gateway could load.
import { parseArgs } from 'node:util';
import { identityNameSchema } from '../config/identities.js';
import { SCOPES, type Scope } from '../config/scopes.js';

export const USAGE_LINE = 'usage: npm run token -- [--] NAME [SCOPE...]';

export const USAGE = `${USAGE_LINE}

Prints a new bearer token once, and its entry for auth.identities in the gateway's config: the entry holds
only the token's SHA-256.

  NAME        the identity's name, 1 to 128 characters; after '--' when it starts with '-'
  SCOPE       what the identity may do (default: read): ${SCOPES.join(', ')}
  -h, --help  print this text, and no token
`;

/** Arguments the command cannot use: said on stderr with exit status 2, and no token made. */
export class UsageError extends Error {}

export type TokenRequest = { help: true } | { help: false; name: string; scopes: Scope[] };

const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s);

export function parseTokenArgs(args: string[]): TokenRequest {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    // parseArgs's own message names the flag, and says how to pass a name that starts with '-'.
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_')) throw new UsageError((err as Error).message);
    throw err;
  }
  if (parsed.values.help) return { help: true };
  const [name, ...asked] = parsed.positionals;
  if (name === undefined) throw new UsageError('no NAME given');
  const checked = identityNameSchema.safeParse(name);
  if (!checked.success) throw new UsageError(`NAME is not a valid identity name: ${checked.error.issues[0]?.message}`);
  const unknown = asked.filter((s) => !isScope(s));
  if (unknown.length) throw new UsageError(`unknown scope(s) ${unknown.join(', ')}; choose from ${SCOPES.join(', ')}`);
  return { help: false, name, scopes: asked.length ? (asked as Scope[]) : ['read'] };
}

function parse(args: string[]) {
  return parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
}
