// '*' (any run of characters) and '?' (one character) patterns, matched against a whole string. A wildcard matches
// every character, line breaks included, so that a name or path holding a control character cannot slip past a
// pattern that was meant to cover it.

/**
 * Whether the glob matches all of s, without a regular expression: at most len(glob) × len(s) steps whatever the
 * pattern. A RegExp of a pattern such as '*a*a*a*a*a*a*a*a*a*a*a*a*b' backtracks for minutes on a 255-character
 * string of a's, and patterns come from requests (/events' ?domain=, ?novaName=) as well as from the configuration
 * (greedy, going back to the last '*' only).
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
