// '*' (any run of characters) and '?' (one character) patterns, matched against a whole string.
// dotAll ('s'): a wildcard matches every character, line breaks included, so that a name or path holding a
// control character cannot slip past a pattern that was meant to cover it.
export function globToRegExp(glob: string, flags = ''): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, `${flags}s`);
}

/**
 * The same patterns, matched without a regular expression: at most len(glob) × len(s) steps whatever the pattern. A
 * RegExp of a pattern such as '*a*a*a*a*a*a*a*a*a*a*a*a*b' backtracks for minutes on a 255-character string of a's,
 * so a pattern that comes from a request is matched with this (greedy, going back to the last '*' only).
 */
export function globMatches(glob: string, s: string): boolean {
  let g = 0;
  let i = 0;
  let star = -1;
  let resume = 0;
  while (i < s.length) {
    const c = glob[g];
    if (c === '?' || (c !== undefined && c !== '*' && c === s[i])) {
      g++;
      i++;
    } else if (c === '*') {
      star = g++;
      resume = i;
    } else if (star >= 0) {
      // Let the last '*' take one more character, and try the rest of the pattern from there.
      g = star + 1;
      i = ++resume;
    } else return false;
  }
  while (glob[g] === '*') g++;
  return g === glob.length;
}
