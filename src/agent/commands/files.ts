// The guest-file-* commands of QEMU's qga/qapi-schema.json, typed. Handles are the agent's integers; every
// binary payload travels as base64 (buf-b64), which the file service decodes before anyone else sees it.
import { z } from 'zod';
import { GatewayError } from '../../errors.js';
import { command } from './define.js';
import { agentInt64 } from './reply-integers.js';

const handle = z.number().int();

/** fopen-style modes qemu-ga accepts (qga/commands-posix.c guest_file_open_modes); the gateway uses these four. */
export const FILE_OPEN_MODES = ['r', 'w', 'a', 'r+'] as const;
export type FileOpenMode = (typeof FILE_OPEN_MODES)[number];

const R = { read: true, write: false };
const W = { read: false, write: true };
const RW = { read: true, write: true };
/** Every mode qemu-ga's guest-file-open knows (its own table, the same on POSIX and Windows), and what each allows. */
const OPEN_MODES: Record<string, { read: boolean; write: boolean }> = {
  r: R,
  rb: R,
  w: W,
  wb: W,
  a: W,
  ab: W,
  'r+': RW,
  'rb+': RW,
  'r+b': RW,
  'w+': RW,
  'wb+': RW,
  'w+b': RW,
  'a+': RW,
  'ab+': RW,
  'a+b': RW,
};

/** What a guest-file-open mode lets the handle do; 400 for a mode qemu-ga does not know. */
export function openModeAccess(mode: unknown): { read: boolean; write: boolean } {
  if (mode === undefined) return OPEN_MODES.r!;
  const access = typeof mode === 'string' && Object.hasOwn(OPEN_MODES, mode) ? OPEN_MODES[mode] : undefined;
  if (!access)
    throw new GatewayError('invalid_request', `guest-file-open mode must be one of ${Object.keys(OPEN_MODES).join(', ')}`, {
      command: 'guest-file-open',
    });
  return access;
}

export const guestFileOpen = command(
  'guest-file-open',
  'query',
  z.object({ path: z.string().min(1), mode: z.enum(FILE_OPEN_MODES) }),
  handle,
  { rawScope: 'open-mode' },
);

/** Moving or closing a handle needs whichever file scope opened it. */
const EITHER_FILE_SCOPE = { anyOf: ['files:read', 'files:write'] } as const;

export const guestFileClose = command('guest-file-close', 'quick', z.object({ handle }), z.looseObject({}), {
  rawScope: EITHER_FILE_SCOPE,
  takesHandle: true,
});

export const guestFileRead = command(
  'guest-file-read',
  'query',
  z.object({ handle, count: z.number().int().min(1) }),
  z.looseObject({ count: z.number().int().min(0), 'buf-b64': z.string(), eof: z.boolean() }),
  { rawScope: 'files:read', takesHandle: true },
);

/** guest-file-read's count, in bytes, that keeps its base64 reply well inside libvirt's 4 MiB RPC string (the raw endpoint's limit). */
export const MAX_RAW_FILE_READ_BYTES = 2 * 1024 * 1024;

export const guestFileWrite = command(
  'guest-file-write',
  'query',
  z.object({ handle, 'buf-b64': z.string(), count: z.number().int().min(0).optional() }),
  z.looseObject({ count: z.number().int().min(0), eof: z.boolean() }),
  { rawScope: 'files:write', takesHandle: true },
);

/**
 * whence is GuestFileWhence: the QGASeek enum ('set' | 'cur' | 'end') or an integer; the names are portable.
 * position can pass 2^53: an ext4 directory answers 9223372036854775807 to a seek to its end (qemu-ga 7.2 and 10.0).
 */
export const guestFileSeek = command(
  'guest-file-seek',
  'query',
  z.object({ handle, offset: z.number().int(), whence: z.enum(['set', 'cur', 'end']) }),
  z.looseObject({ position: agentInt64(), eof: z.boolean() }),
  { rawScope: EITHER_FILE_SCOPE, takesHandle: true },
);

export const guestFileFlush = command('guest-file-flush', 'query', z.object({ handle }), z.looseObject({}), {
  rawScope: 'files:write',
  takesHandle: true,
});
