// guest-exec and guest-exec-status (qga/qapi-schema.json). Everything binary travels as base64.
import { z } from 'zod';
import { command } from './define.js';

export const guestExecArgs = z.object({
  path: z.string(),
  arg: z.array(z.string()).optional(),
  env: z.array(z.string()).optional(),
  'input-data': z.string().optional(),
  // A bool in qemu-ga 7.2; newer agents also take a string enum, which the gateway does not use.
  'capture-output': z.boolean().optional(),
});
export type GuestExecArgs = z.infer<typeof guestExecArgs>;
export const guestExec = command('guest-exec', 'query', guestExecArgs, z.looseObject({ pid: z.number().int() }), { rawScope: 'exec' });

export const guestExecStatusReply = z.looseObject({
  exited: z.boolean(),
  exitcode: z.number().int().optional(),
  signal: z.number().int().optional(),
  'out-data': z.string().optional(),
  'err-data': z.string().optional(),
  'out-truncated': z.boolean().optional(),
  'err-truncated': z.boolean().optional(),
});
export type GuestExecStatus = z.infer<typeof guestExecStatusReply>;
// 'query': the reply of an exited process carries its output, which can take a while to come through.
export const guestExecStatus = command('guest-exec-status', 'query', z.object({ pid: z.number().int() }), guestExecStatusReply, {
  rawScope: 'exec',
  rawRefused:
    "its reply carries up to 16 MiB per stream of the process's output, base64-encoded, " +
    "and one over 10 MiB breaks the domain's agent channel; use GET /domains/{domain}/exec/{pid}, " +
    'which also keeps the result after the agent reaps the process',
});
