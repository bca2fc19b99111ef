// The origins cors.origins may name, and how a request's Origin header is matched against them. A browser sends
// Origin as scheme://host[:port], lower case, without a default port; so a pattern is written the same way, and
// matched as a whole, anchored, never as a substring or suffix: 'https://example.org' grants neither
// 'https://example.org.evil.com' nor 'https://evilexample.org'. Regular expressions are deliberately not
// accepted: an unanchored or badly escaped one is the classic way to let such origins through.
//
//   https://ops.example.org          exactly this origin
//   https://*.example.org            any origin one or more DNS labels below example.org (not example.org itself)
//   http://localhost:*               any port, or none
//   *                                any origin (refused together with cors.credentials)
//
// The origin 'null' (sandboxed frames, file: pages, some redirects) is never granted: anything can send it.

const PATTERN =
  /^(https?):\/\/(\*\.)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::(\d{1,5}|\*))?$/;
const DEFAULT_PORT: Record<string, string> = { http: '80', https: '443' };
/** One DNS label and its dot, for '*.'. */
const LABELS = '(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)+';

/** Why the pattern cannot mean what it seems, or null when it is fine. */
export function originPatternProblem(pattern: string): string | null {
  if (pattern === '*') return null;
  if (pattern === 'null') return "the origin 'null' is sent by sandboxed frames and file: pages, anyone's: it cannot be allowed";
  if (pattern.startsWith('/')) return 'regular expressions are not accepted: write scheme://host[:port], with * for labels or the port';
  const m = PATTERN.exec(pattern);
  if (!m) {
    return (
      'must be an origin as browsers send it: http(s)://host[:port], lower case, without a path or trailing slash; ' +
      "'*.' only before the host, ':*' for any port"
    );
  }
  const [, scheme, , host, port] = m;
  if (port !== undefined && port !== '*' && (Number(port) > 65535 || Number(port) === 0)) return `port ${port} is not a port`;
  if (port === DEFAULT_PORT[scheme!]) return `browsers leave the default port out of Origin: write ${scheme}://${m[2] ?? ''}${host}`;
  return null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The patterns (each valid: originPatternProblem) as one test of a request's Origin header. */
export function originMatcher(patterns: readonly string[]): (origin: string | undefined) => boolean {
  if (patterns.includes('*')) return (origin) => origin !== undefined && origin !== 'null';
  const exact = new Set<string>();
  const wild: RegExp[] = [];
  for (const p of patterns) {
    const m = PATTERN.exec(p);
    if (!m) throw new Error(`not an origin pattern: ${p}`);
    const [, scheme, labels, host, port] = m;
    if (!labels && port !== '*') {
      exact.add(p);
      continue;
    }
    const portPart = port === '*' ? '(?::\\d{1,5})?' : port ? `:${port}` : '';
    wild.push(new RegExp(`^${scheme}://${labels ? LABELS : ''}${escapeRegExp(host!)}${portPart}$`));
  }
  return (origin) => origin !== undefined && (exact.has(origin) || wild.some((re) => re.test(origin)));
}
