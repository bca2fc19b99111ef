// '*' (any run of characters) and '?' (one character) patterns, matched against a whole string.
export function globToRegExp(glob: string, flags = ''): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, flags);
}
