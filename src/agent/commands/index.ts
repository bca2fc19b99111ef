// The catalogue of guest-agent commands: every command of qemu-ga's schema (qga/qapi-schema.json, QEMU 10), one file
// per part of that schema: info.ts (the sync commands, guest-ping, guest-info), files.ts (guest-file-*), exec.ts
// (guest-exec, guest-exec-status), fs.ts (freeze, thaw, trim, file systems, disks), network.ts (interfaces,
// routes), system.ts (time, time zone, host name, OS, users, vCPUs, memory blocks, CPU statistics, load, devices,
// shutdown and suspend) and accounts.ts (passwords, SSH keys). Each entry is one command's definition (define.ts:
// name, kind of deadline, argument and reply schemas; a name alone for the few the gateway never sends typed) with
// its attributes, which the rest of the gateway reads here instead of keeping lists of its own: which commands skip
// the capability check (core/service.ts), which run while the guest is frozen (freeze/freeze-registry.ts), which the
// raw endpoint refuses and why (raw/raw-command.ts), which scope a raw caller needs and which take a file handle
// (src/auth/raw-scopes.ts, raw-authorization.ts), and which the metrics count by name (src/metrics/labels.ts).
// The services import the typed definitions from their group's file, or from here.
import * as accounts from './accounts.js';
import type { CommandFacts } from './define.js';
import * as exec from './exec.js';
import * as files from './files.js';
import * as fs from './fs.js';
import * as info from './info.js';
import * as network from './network.js';
import * as system from './system.js';

export * from './accounts.js';
export * from './define.js';
export * from './exec.js';
export * from './files.js';
export * from './fs.js';
export * from './info.js';
export * from './network.js';
export * from './system.js';

const isFacts = (v: unknown): v is CommandFacts =>
  typeof v === 'object' && v !== null && typeof (v as { execute?: unknown }).execute === 'string';

/** Every command definition the group files export. */
export const CATALOGUE: readonly CommandFacts[] = [info, files, exec, fs, network, system, accounts].flatMap((group) =>
  Object.values(group).filter(isFacts),
);

const BY_NAME = new Map<string, CommandFacts>();
for (const entry of CATALOGUE) {
  if (BY_NAME.has(entry.execute)) throw new Error(`the command catalogue defines ${entry.execute} twice`);
  BY_NAME.set(entry.execute, entry);
}

/** What the catalogue says of a command; undefined for a name qemu-ga's schema does not have (a raw caller's guess, or a newer agent's). */
export function commandFacts(execute: string): CommandFacts | undefined {
  return BY_NAME.get(execute);
}
