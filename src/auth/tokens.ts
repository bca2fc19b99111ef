// Bearer tokens: random, high-entropy strings. The config holds only their SHA-256 (a slow hash buys nothing
// for 256 random bits), and a presented token is compared with every identity's hash in constant time.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = 'qgw_';

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function tokenSha256(token: string): string {
  return hash('sha256', token, 'hex');
}

/** The index of the hash the token matches, or -1. Every hash is compared, so timing tells nothing of which. */
export function matchToken(token: string, hashes: readonly Buffer[]): number {
  // The one-shot hash: a createHash object per request cost twice as much.
  const presented = hash('sha256', token, 'buffer');
  let found = -1;
  for (let i = 0; i < hashes.length; i++) {
    if (timingSafeEqual(presented, hashes[i]!) && found < 0) found = i;
  }
  return found;
}
