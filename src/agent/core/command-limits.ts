// How large one agent command (its JSON) may be on the way in. qemu-ga 7.2 misparses a command of about
// 256 KiB (measured here by the files work: a 196,000-byte guest-file-write failed with "JSON parse error" and
// its tail was read as the next command), so everything the gateway sends stays well below that.
import { stringifyJson } from '../transports/agent-json.js';

export const MAX_COMMAND_JSON_BYTES = 192 * 1024;

/** Bytes of the JSON line the agent will receive for this command. */
export function commandJsonBytes(execute: string, args: unknown): number {
  return Buffer.byteLength(stringifyJson(args === undefined ? { execute } : { execute, arguments: args }));
}
