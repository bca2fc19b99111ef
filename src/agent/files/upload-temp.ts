// The temporary file an atomic upload writes before renaming it over its target: in the target's directory (a
// rename within one file system is one step), hidden, named so that an operator sees whose it is, and with 96
// random bits so that nobody in the guest can guess it beforehand (qemu-ga's open follows a planted link).
// Its record in state.dir/uploads/ lets a gateway killed mid-upload remove it when it starts again.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { StateJournal } from '../../state/journal.js';
import type { DomainRef } from '../../domains/vocabulary.js';

/** The marker every temporary file name carries: `find / -name '.*.qga-gateway-*.tmp'` lists strays. */
export const TEMP_MARKER = '.qga-gateway-';

/** Bytes of the target's name kept in the temporary name: the whole stays under NAME_MAX (255). */
const NAME_BYTES_KEPT = 200;

function cutToBytes(text: string, max: number): string {
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}

/** `/dir/name` → `/dir/.name.qga-gateway-<24 hex>.tmp` (the separator the target uses). */
export function tempPathFor(target: string, random: () => string = () => randomBytes(12).toString('hex')): string {
  const cut = Math.max(target.lastIndexOf('/'), target.lastIndexOf('\\'));
  const dir = target.slice(0, cut + 1);
  const name = target.slice(cut + 1);
  return `${dir}.${cutToBytes(name, NAME_BYTES_KEPT)}${TEMP_MARKER}${random()}.tmp`;
}

/** Whether `path` is a name tempPathFor() makes: recovery removes nothing else, whatever a record says. */
export function isTempPath(path: string): boolean {
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return cut >= 0 && /^\..*\.qga-gateway-[0-9a-f]{24}\.tmp$/s.test(path.slice(cut + 1));
}

export const uploadRecordSchema = z
  .strictObject({
    /** The temporary path's domain key and path: unique (random). */
    id: z.string().min(1),
    host: z.string().min(1),
    uuid: z.string().min(1),
    name: z.string(),
    /** libvirt's id of the running domain: another one at recovery means it restarted, and the handle is gone. */
    domId: z.number().int(),
    os: z.enum(['posix', 'windows']),
    /** The temporary file's handle in qemu-ga, once open: closed at recovery, or it stays open in the agent. */
    handle: z.number().int().optional(),
    temp: z.string().min(1),
    target: z.string().min(1),
    startedAt: z.iso.datetime(),
  })
  .refine((r) => isTempPath(r.temp), {
    message:
      'temp is not a name the gateway makes (.NAME.qga-gateway-<24 hex>.tmp): a record that could make the gateway remove another file is refused',
    path: ['temp'],
  });
export type UploadRecord = z.infer<typeof uploadRecordSchema>;

export function uploadJournal(stateDir: string): StateJournal<UploadRecord> {
  return new StateJournal(stateDir, 'uploads', uploadRecordSchema);
}

export function uploadRecord(dom: DomainRef, os: UploadRecord['os'], temp: string, target: string): UploadRecord {
  return {
    id: `${dom.host}/${dom.uuid}/${temp}`,
    host: dom.host,
    uuid: dom.uuid,
    name: dom.name,
    domId: dom.id,
    os,
    temp,
    target,
    startedAt: new Date().toISOString(),
  };
}
