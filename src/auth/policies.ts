// Per-identity policies, beyond scopes: which guest paths an identity may read or write, which programs it
// may start, which raw agent commands it may send. Absent: no restriction beyond the scopes. Decided in the
// route handlers before any agent command is queued; a refusal is 403 forbidden.
//
// What a policy cannot see: the guest resolves symlinks and hard links itself, so a path that is allowed can
// still lead to a file that is not. Deny the directories where the identity could plant a link, or treat the
// patterns as a guard rail rather than a sandbox. Allowing a shell or interpreter in exec allows everything.
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import type { Identity } from './identity.js';

/** Absolute (or starting with a wildcard): a relative pattern would never match the absolute paths compared. */
const glob = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^(\/|[A-Za-z]:[/\\]|\*)/, "must be an absolute guest path pattern: /srv/**, C:/Users/**, or starting with '*'");
const globs = z.array(glob).max(1024);
const pathRulesSchema = z.strictObject({
  /** Only paths matching one of these; absent: every path not denied. */
  allow: globs.optional(),
  /** Never these, even when allowed: deny wins. */
  deny: globs.default([]),
});

export const policiesConfigSchema = z.strictObject({
  /** Guest path globs for the file routes: '*' within one path segment, '**' across segments, '?' one character. */
  files: z.strictObject({ read: pathRulesSchema.optional(), write: pathRulesSchema.optional() }).optional(),
  /** Programs POST /domains/{domain}/exec may start: absolute paths or globs of them. */
  exec: z.strictObject({ allow: globs }).optional(),
  /** Agent command names the raw endpoint may send (on top of rawCommands' own rules). */
  raw: z.strictObject({ allow: z.array(z.string().min(1).max(64)).max(1024) }).optional(),
});
export type PoliciesConfig = z.infer<typeof policiesConfigSchema>;

interface PathRules {
  allow: RegExp[] | null;
  deny: RegExp[];
}

export interface Policies {
  read: PathRules | null;
  write: PathRules | null;
  exec: RegExp[] | null;
  raw: ReadonlySet<string> | null;
}

export const NO_POLICIES: Policies = { read: null, write: null, exec: null, raw: null };

const WINDOWS_DRIVE = /^[A-Za-z]:/;

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
  return new RegExp(`^${body}$`, WINDOWS_DRIVE.test(g) ? 'i' : '');
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
    exec: p.exec ? p.exec.allow.map(pathGlob) : null,
    raw: p.raw ? new Set(p.raw.allow) : null,
  };
}

/** Whether the rules let this path through: not denied, and allowed when there is an allow list. */
export function pathAllowed(rules: PathRules | null, path: string): boolean {
  if (!rules) return true;
  const p = normalise(path);
  if (rules.deny.some((re) => re.test(p))) return false;
  return rules.allow === null || rules.allow.some((re) => re.test(p));
}

const policiesOf = (identity: Identity | null): Policies => identity?.policies ?? NO_POLICIES;

/** path: as guestPathFromUrl returned it (absolute, no '.' or '..'). */
export function checkFilePath(identity: Identity | null, access: 'read' | 'write', path: string): void {
  if (pathAllowed(policiesOf(identity)[access], path)) return;
  throw new GatewayError('forbidden', `identity '${identity!.name}' may not ${access} '${path}' (auth policies.files.${access})`);
}

/**
 * With an allow list, only an absolute program path without '.' or '..' segments: the agent resolves a bare
 * name through the guest's PATH, and '..' would climb out of an allowed directory.
 */
export function checkExec(identity: Identity | null, program: string): void {
  const allow = policiesOf(identity).exec;
  if (!allow) return;
  const refuse = (why: string) => new GatewayError('forbidden', `identity '${identity!.name}' may not run '${program}': ${why} (auth policies.exec)`);
  if (!(program.startsWith('/') || /^[A-Za-z]:[/\\]/.test(program))) throw refuse('only absolute program paths are allowed, the agent would look a bare name up in PATH');
  if (program.split(/[/\\]/).some((s) => s === '.' || s === '..')) throw refuse("'.' and '..' segments are not allowed");
  const p = normalise(program);
  if (!allow.some((re) => re.test(p))) throw refuse('not in its allow list');
}

/** Raw commands that write guest files without guest-file-*: keys in ~/.ssh/authorized_keys. */
const FILE_WRITING = new Set(['guest-ssh-add-authorized-keys', 'guest-ssh-remove-authorized-keys']);

/**
 * The raw endpoint must not get around the other policies. A raw guest-file-read/-write acts on a handle
 * opened earlier, whose path the gateway cannot know: so with any file policy every raw guest-file-* command
 * is refused, and with an exec policy guest-exec is.
 */
export function checkRaw(identity: Identity | null, execute: string): void {
  const p = policiesOf(identity);
  const refuse = (why: string) => new GatewayError('forbidden', `identity '${identity!.name}' may not send ${execute}: ${why}`, { command: execute });
  if (p.raw && !p.raw.has(execute)) throw refuse('not in its raw allow list (auth policies.raw)');
  if ((p.read || p.write) && (execute.startsWith('guest-file-') || FILE_WRITING.has(execute))) {
    throw refuse('it has file policies (auth policies.files), which the raw endpoint cannot enforce; use the file resources');
  }
  if (p.exec && execute === 'guest-exec') throw refuse('it has an exec policy (auth policies.exec), which the raw endpoint cannot enforce; use POST /domains/{domain}/exec');
}
