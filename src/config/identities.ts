// What the configuration may say of an identity beyond its token and scopes: its name (the rule `npm run token`
// applies too, src/cli/token-args.ts), the domain patterns it is granted (their grammar; src/auth/domain-patterns.ts
// matches them) and its policies (their schema; src/auth/policies.ts compiles and applies them). Here so that the
// config's schema needs nothing of src/auth.
import { z } from 'zod';
import { isLoaderVariable } from './loader-env.js';

/** An identity's name, as logs, audit lines and rate limits call it. */
export const identityNameSchema = z.string().min(1).max(128);

/** One domain pattern (the grammar of domainPatternProblem): identities' domains, auth.keystone.unscopedDomains. */
export const domainPatternSchema = z
  .string()
  .min(1)
  .max(1024)
  .superRefine((p, ctx) => {
    const problem = domainPatternProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const HOST_PART = /^[a-z0-9*?][a-z0-9._*?-]*$/;

/** Why a pattern cannot be used, or null: for the config's checks. */
export function domainPatternProblem(pattern: string): string | null {
  if (/[\u0000-\u001f\u007f]/.test(pattern)) return 'must not contain control characters';
  if (pattern.startsWith('uuid:')) {
    const rest = pattern.slice(5);
    return /^[0-9a-fA-F*?-]+$/.test(rest) ? null : "'uuid:' must be followed by a UUID or a UUID pattern (hex digits, '-', '*', '?')";
  }
  const colon = pattern.indexOf(':');
  if (colon >= 0 && !HOST_PART.test(pattern.slice(0, colon)))
    return `'${pattern.slice(0, colon)}' before ':' is not a host name or host pattern`;
  if (colon >= 0 && pattern.slice(colon + 1) === '') return "a domain name or UUID must follow 'host:'";
  return null;
}

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
  exec: z
    .strictObject({
      /** Programs POST /domains/{domain}/exec (and a raw guest-exec) may start: absolute paths or globs of them. */
      allow: globs,
      /**
       * Environment variable names a request may set (exactly as written); absent: no `env` at all. Loader and
       * interpreter variables (src/config/loader-env.ts) are refused even when listed.
       */
      env: z
        .array(
          z
            .string()
            .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name')
            .refine(
              (n) => !isLoaderVariable(n),
              'loads code into the program (a loader or interpreter variable): never allowed under an exec policy',
            ),
        )
        .max(256)
        .optional(),
    })
    .optional(),
  /** Agent command names the raw endpoint may send (on top of rawCommands' own rules). */
  raw: z.strictObject({ allow: z.array(z.string().min(1).max(64)).max(1024) }).optional(),
});
export type PoliciesConfig = z.infer<typeof policiesConfigSchema>;
