// How the catalogue (index.ts) describes one guest-agent command of QEMU's qga/qapi-schema.json: its definition
// (name, kind of deadline, the zod schemas of its arguments and of its reply) and the attributes the rest of the
// gateway reads instead of keeping lists of its own. Replies are loose objects: newer agents add fields, and that
// must not break us.
import { z } from 'zod';
import type { CommandKind } from '../../config/schema.js';
import type { Scope } from '../../config/scopes.js';

/**
 * The scope a raw caller needs beside `admin` to send the command: the scope of the resource route that sends the
 * same command (src/auth/raw-scopes.ts). anyOf: one of them suffices (moving or closing a handle needs whichever
 * file scope opened it). 'open-mode': files:read, files:write or both, as guest-file-open's mode opens the file.
 */
export type RawScope = Scope | { anyOf: readonly Scope[] } | 'open-mode';

export interface CommandAttributes {
  /** Sent without asking guest-info whether the agent offers it: the commands needed to learn the rest, and the transport's own (core/service.ts). */
  ungated?: boolean;
  /** qemu-ga still runs it while the guest's file systems are frozen; it disables every other command until guest-fsfreeze-thaw (freeze/freeze-registry.ts). */
  allowedWhileFrozen?: boolean;
  /** The raw endpoint always refuses it, for this reason, which the caller is told (raw/raw-command.ts). */
  rawRefused?: string;
  /** What a raw caller needs beside `admin`; absent: `admin` alone. */
  rawScope?: RawScope;
  /** Its arguments name a guest file handle, which the raw endpoint checks the caller holds (src/auth/raw-authorization.ts). */
  takesHandle?: boolean;
}

/** What the catalogue knows of every command, typed or not. */
export interface CommandFacts extends CommandAttributes {
  /** qemu-ga's name for it. */
  execute: string;
}

/** A command the gateway sends itself: facts, and how it is called. */
export interface AgentCommand<Args, Reply> extends CommandFacts {
  kind: CommandKind;
  args: z.ZodType<Args>;
  reply: z.ZodType<Reply>;
}

export function command<Args, Reply>(
  execute: string,
  kind: CommandKind,
  args: z.ZodType<Args>,
  reply: z.ZodType<Reply>,
  attributes: CommandAttributes = {},
): AgentCommand<Args, Reply> {
  return { execute, kind, args, reply, ...attributes };
}

/** A command of qemu-ga's schema the gateway never sends typed (only on a raw caller's behalf, or as a transport's own): known by name. */
export function known(execute: string, attributes: CommandAttributes = {}): CommandFacts {
  return { execute, ...attributes };
}

export const noArgs = z.undefined();
