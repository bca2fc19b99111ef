// The raw endpoint (POST /domains/{domain}/agent/commands) must give an identity nothing its scopes and
// policies refuse on the resource routes. Decided after the domain is resolved (a handle belongs to one
// domain's agent) and before any agent command is queued.
//   - Scopes: `admin` (the route's own) and the scope of the resource the command stands for (raw-scopes.ts).
//   - Policies: a raw guest-file-open is checked against the files policy for its mode, its path by the
//     file routes' own rule; a raw guest-exec against the exec policy (program and env); policies.raw.allow.
//   - Handles: a file command names a handle, not a path. A handle a transfer of the file routes holds is
//     nobody's to touch; one opened raw is its opener's; one the gateway never saw opened (a leftover, or opened
//     before a restart) is allowed only to identities without file policies, since its path is unknown.
import { guestExec } from '../agent/commands/exec.js';
import { guestFileOpen, openModeAccess } from '../agent/commands/files.js';
import { commandFacts } from '../agent/commands/index.js';
import { guestPath } from '../agent/files/guest-path.js';
import type { HandleHolder } from '../agent/raw/raw-command.js';
import { GatewayError } from '../errors.js';
import type { Identity } from './identity.js';
import { checkExec, checkExecEnv, checkFilePath } from './policies.js';
import { rawCommandScopes } from './raw-scopes.js';

export interface RawCall {
  execute: string;
  arguments?: Record<string, unknown> | undefined;
}

function invalid(execute: string, what: string): GatewayError {
  return new GatewayError('invalid_request', `${execute}: ${what}`, { command: execute });
}

function checkScopes(identity: Identity, call: RawCall): void {
  const need = rawCommandScopes(call.execute, call.arguments);
  const missing = need.all.filter((s) => !identity.scopes.has(s));
  const lacksAny = need.any && !need.any.some((s) => identity.scopes.has(s));
  if (missing.length === 0 && !lacksAny) return;
  const wanted = missing.length ? missing.map((s) => `'${s}'`).join(' and ') : need.any!.map((s) => `'${s}'`).join(' or ');
  throw new GatewayError(
    'forbidden',
    `identity '${identity.name}' lacks the scope ${wanted} that ${call.execute} needs beside 'admin' (the scope of the resource that sends it)`,
    { command: call.execute },
  );
}

export function authorizeRawCommand(identity: Identity, call: RawCall, holderOf: (handle: number) => HandleHolder): void {
  checkScopes(identity, call);
  const { execute } = call;
  const args = call.arguments ?? {};
  const p = identity.policies;
  const refuse = (why: string) =>
    new GatewayError('forbidden', `identity '${identity.name}' may not send ${execute}: ${why}`, { command: execute });
  if (p.raw && !p.raw.has(execute)) throw refuse('not in its raw allow list (auth policies.raw)');
  const filePolicies = p.read !== null || p.write !== null;

  if (execute === guestFileOpen.execute) {
    if (typeof args.path !== 'string') throw invalid(execute, 'arguments.path must be a string');
    const path = guestPath(args.path);
    const { read, write } = openModeAccess(args.mode);
    if (read) checkFilePath(identity, 'read', path);
    if (write) checkFilePath(identity, 'write', path);
  } else if (commandFacts(execute)?.takesHandle) {
    const handle = args.handle;
    if (typeof handle !== 'number' || !Number.isSafeInteger(handle)) throw invalid(execute, 'arguments.handle must be an integer');
    const holder = holderOf(handle);
    if (holder === 'gateway') throw refuse(`handle ${handle} belongs to a transfer of the file resources in progress`);
    if (holder && holder.identity !== identity.name) throw refuse(`handle ${handle} was opened by another identity`);
    if (!holder && filePolicies)
      throw refuse(
        `it has file policies (auth policies.files), and handle ${handle} was not opened by it through this endpoint, so its path is unknown`,
      );
  } else if (execute === guestExec.execute) {
    if (typeof args.path !== 'string') throw invalid(execute, 'arguments.path must be a string');
    const env = args.env ?? [];
    if (!Array.isArray(env) || env.some((e) => typeof e !== 'string'))
      throw invalid(execute, 'arguments.env must be an array of NAME=value strings');
    checkExec(identity, args.path);
    checkExecEnv(identity, env as string[]);
  }
}
