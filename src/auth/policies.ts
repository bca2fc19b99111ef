// Per-identity policies, beyond scopes: which guest paths an identity may read or write, which programs it
// may start, which raw agent commands it may send. Absent: no restriction beyond the scopes. Decided in the
// route handlers before any agent command is queued; a refusal is 403 forbidden.
//
// What a policy cannot see: the guest resolves symlinks and hard links itself, so a path that is allowed can
// still lead to a file that is not. Deny the directories where the identity could plant a link, or treat the
// patterns as a guard rail rather than a sandbox. Allowing a shell or interpreter in exec allows everything.
// What the config may say (policies' schema) is in src/config/identities.ts; this file compiles and applies it.
import type { PoliciesConfig } from '../config/identities.js';
import { GatewayError } from '../errors.js';
import { isLoaderVariable } from '../config/loader-env.js';

interface PathRules {
  allow: RegExp[] | null;
  deny: RegExp[];
}

export interface Policies {
  read: PathRules | null;
  write: PathRules | null;
  exec: { programs: RegExp[]; env: ReadonlySet<string> } | null;
  raw: ReadonlySet<string> | null;
}

export const NO_POLICIES: Policies = { read: null, write: null, exec: null, raw: null };

const WINDOWS_DRIVE = /^[A-Za-z]:/;
const DRIVES = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'];

/**
 * The form paths and patterns are compared in: '\' as '/' on a Windows path (Windows takes both), repeated
 * separators as one (the guest does too: //etc/passwd must not slip past a deny of /etc/**).
 */
function normalise(path: string): string {
  const p = WINDOWS_DRIVE.test(path) ? path.replace(/\\/g, '/') : path;
  return p.replace(/\/{2,}/g, '/');
}

/** '**' any characters, '*' any within a segment, '?' one within a segment. Windows paths match in any case. */
export function pathGlob(glob: string): RegExp {
  const g = normalise(glob);
  let body = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*' && g[i + 1] === '*') {
      // '/**/' also matches a single '/': /srv/**/x.txt covers /srv/x.txt.
      if (g[i + 2] === '/') {
        body += '(?:.*/)?';
        i += 2;
      } else {
        body += '.*';
        i += 1;
      }
    } else if (c === '*') body += '[^/]*';
    else if (c === '?') body += '[^/]';
    else body += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // dotAll: a wildcard matches a line break too, so no control character in a path escapes a deny rule.
  return new RegExp(`^${body}$`, WINDOWS_DRIVE.test(g) ? 'is' : 's');
}

function compileRules(r: { allow?: string[] | undefined; deny: string[] } | undefined): PathRules | null {
  if (!r) return null;
  return { allow: r.allow ? r.allow.map(pathGlob) : null, deny: r.deny.map(pathGlob) };
}

export function compilePolicies(p: PoliciesConfig | undefined): Policies {
  if (!p) return NO_POLICIES;
  return {
    read: compileRules(p.files?.read),
    write: compileRules(p.files?.write),
    exec: p.exec ? { programs: p.exec.allow.map(pathGlob), env: new Set(p.exec.env ?? []) } : null,
    raw: p.raw ? new Set(p.raw.allow) : null,
  };
}

/** Whether the rules let this path through: not denied, and allowed when there is an allow list. */
export function pathAllowed(rules: PathRules | null, path: string): boolean {
  if (!rules) return true;
  const p = normalise(path);
  if (rules.deny.some((re) => re.test(p))) return false;
  // A Windows agent takes a path without a drive (/Secrets/x) on its current drive: a Windows deny rule on any
  // drive covers it. (An allow rule on a drive does not: the caller can name the drive.)
  if (p.startsWith('/') && rules.deny.some((re) => re.flags.includes('i') && DRIVES.some((d) => re.test(`${d}:${p}`)))) return false;
  return rules.allow === null || rules.allow.some((re) => re.test(p));
}

/** Who a check is about: an identity (identity.ts) has its name and its compiled policies. */
export interface PolicyHolder {
  name: string;
  policies: Policies;
}

const policiesOf = (identity: PolicyHolder | null): Policies => identity?.policies ?? NO_POLICIES;

/** path: as guestPathFromUrl returned it (absolute, no '.' or '..'). */
export function checkFilePath(identity: PolicyHolder | null, access: 'read' | 'write', path: string): void {
  if (pathAllowed(policiesOf(identity)[access], path)) return;
  throw new GatewayError('forbidden', `identity '${identity!.name}' may not ${access} '${path}' (auth policies.files.${access})`);
}

/**
 * With an allow list, only an absolute program path without '.' or '..' segments: the agent resolves a bare
 * name through the guest's PATH, and '..' would climb out of an allowed directory.
 */
export function checkExec(identity: PolicyHolder | null, program: string): void {
  const exec = policiesOf(identity).exec;
  if (!exec) return;
  const refuse = (why: string) =>
    new GatewayError('forbidden', `identity '${identity!.name}' may not run '${program}': ${why} (auth policies.exec)`);
  if (/[\u0000-\u001f\u007f]/.test(program)) throw refuse('the program path contains a control character');
  if (!(program.startsWith('/') || /^[A-Za-z]:[/\\]/.test(program)))
    throw refuse('only absolute program paths are allowed, the agent would look a bare name up in PATH');
  if (program.split(/[/\\]/).some((s) => s === '.' || s === '..')) throw refuse("'.' and '..' segments are not allowed");
  const p = normalise(program);
  if (!exec.programs.some((re) => re.test(p))) throw refuse('not in its allow list');
}

/**
 * env: NAME=value entries as guest-exec takes them. Under an exec policy each name must be on the policy's env
 * list, exactly, and never a loader or interpreter variable (policies.exec.env cannot list one, and a name that
 * differs from one only in case is refused too, for Windows guests).
 */
export function checkExecEnv(identity: PolicyHolder | null, env: readonly string[]): void {
  const exec = policiesOf(identity).exec;
  if (!exec || env.length === 0) return;
  for (const entry of env) {
    const eq = entry.indexOf('=');
    const name = eq > 0 ? entry.slice(0, eq) : entry;
    const refuse = (why: string) =>
      new GatewayError(
        'forbidden',
        `identity '${identity!.name}' may not set the environment variable '${name.slice(0, 128)}': ${why} (auth policies.exec.env)`,
      );
    if (eq <= 0) throw refuse('an env entry must be NAME=value');
    if (isLoaderVariable(name)) throw refuse('it makes the program load other code');
    if (!exec.env.has(name)) throw refuse(exec.env.size ? 'not in its env list' : 'its exec policy lists no environment variables');
  }
}
