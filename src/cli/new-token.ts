#!/usr/bin/env node
// npm run token -- NAME [SCOPE...]: prints a new bearer token once, and the config entry that holds only its hash.
import { stringify } from 'yaml';
import { SCOPES, type Scope } from '../config/scopes.js';
import { newToken, tokenSha256 } from '../auth/tokens.js';

const [name = 'operator', ...asked] = process.argv.slice(2);
const scopes = (asked.length ? asked : ['read']) as Scope[];
const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
if (unknown.length) {
  process.stderr.write(`unknown scope(s) ${unknown.join(', ')}; choose from ${SCOPES.join(', ')}\n`);
  process.exit(2);
}
const token = newToken();
process.stdout.write(`token (shown once, give it to the client; the gateway keeps only its hash):\n  ${token}\n\n`);
process.stdout.write(`add under auth.identities in the gateway's config:\n`);
process.stdout.write(stringify([{ name, tokenSha256: tokenSha256(token), scopes, domains: ['*'] }]).replace(/^/gm, '  '));
