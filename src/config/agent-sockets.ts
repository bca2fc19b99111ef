// The agentSockets section of the configuration: guest agents reached without libvirt, over the unix socket
// QEMU exposes for each VM (a chardev socket server attached to org.qemu.guest_agent.0; Proxmox VE keeps them
// as /var/run/qemu-server/VMID.qga). These domains appear beside libvirt's under their own host name.
import { z } from 'zod';
import { hostNameSchema, ms } from '../config/fields.js';
import { domainIdString } from './domain-id.js';

export const agentSocketsConfigSchema = z
  .strictObject({
    /** The host name these domains answer under (and qualify as host:name). */
    host: hostNameSchema.default('direct'),
    /** Explicit domains: name and socket path. */
    sockets: z.array(z.strictObject({ name: domainIdString(), path: z.string().regex(/^\//, 'must be an absolute path') })).default([]),
    /** Directories of sockets: every file matching glob ('*' and '?' in the file name only) is a domain, named by `name`. */
    directories: z
      .array(
        z.strictObject({
          glob: z
            .string()
            .regex(/^\/[^*?]*\/[^/]+$/, "must be an absolute path whose last part may hold '*' and '?', e.g. /var/run/qemu-server/*.qga"),
          /** The domain name from the file name: {file} is the whole name, {stem} the name without its last extension (100.qga: 100). */
          name: z.string().min(1).max(256).default('{stem}'),
        }),
      )
      .default([]),
    /** How long a directory listing is reused before the directory is read again. */
    rescanMs: z.number().int().min(0).max(600_000).default(2_000),
    connectTimeoutMs: ms(60_000).default(2_000),
    /** One resynchronisation (0xFF + guest-sync-delimited) may take this long; with no answer on a fresh connection: 503 agent_busy. */
    syncTimeoutMs: ms(60_000).default(3_000),
    /** A reply longer than this is refused (502 agent_reply_too_large) and the channel resynchronised. */
    maxReplyBytes: z
      .number()
      .int()
      .min(65_536)
      .max(256 * 1024 * 1024)
      .default(16 * 1024 * 1024),
  })
  .prefault({});
