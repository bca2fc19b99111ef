#!/usr/bin/env node
// npm run token -- NAME [SCOPE...]: prints a new bearer token once, and the config entry that holds only its hash.
// --help prints the usage; arguments it cannot use (token-args.ts) get exit status 2, and no token.
import { stringify } from 'yaml';
import { newToken, tokenSha256 } from '../auth/tokens.js';
import { parseTokenArgs, USAGE, USAGE_LINE, UsageError, type TokenRequest } from './token-args.js';

function main(args: string[]): number {
  let request: TokenRequest;
  try {
    request = parseTokenArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`npm run token: ${err.message}\n${USAGE_LINE}  (--help for more)\n`);
    return 2;
  }
  if (request.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { name, scopes } = request;
  const token = newToken();
  process.stdout.write(`token (shown once, give it to the client; the gateway keeps only its hash):\n  ${token}\n\n`);
  process.stdout.write(`add under auth.identities in the gateway's config:\n`);
  process.stdout.write(stringify([{ name, tokenSha256: tokenSha256(token), scopes, domains: ['*'] }]).replace(/^(?=.)/gm, '  '));
  return 0;
}

process.exitCode = main(process.argv.slice(2));
