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
