// The durable side of the gateway's freezes (state.dir/freezes/): a record is written before the freeze command
// is sent and removed once the freeze is over, so that a gateway that dies holding a freeze thaws it when it
// starts again, at its deadline or at once. qemu-ga has no deadline of its own: without this a guest killed
// gateway left frozen stays frozen until someone notices.
import { z } from 'zod';
import { GatewayError } from '../../errors.js';
import { StateJournal } from '../../state/journal.js';
import type { HeldFreeze } from './freeze-registry.js';
import { domainKey, type DomainRef } from '../../domains/vocabulary.js';

export const freezeRecordSchema = z.strictObject({
  /** domainKey(): host/uuid. */
  id: z.string().min(1),
  host: z.string().min(1),
  uuid: z.string().min(1),
  name: z.string(),
  /** libvirt's id of the running domain when frozen: another id means it has restarted since, and the freeze is gone. */
  domId: z.number().int(),
  mountpoints: z.array(z.string()).nullable(),
  frozenAt: z.iso.datetime(),
  thawAt: z.iso.datetime(),
});
export type FreezeRecord = z.infer<typeof freezeRecordSchema>;

export function freezeJournal(stateDir: string): StateJournal<FreezeRecord> {
  return new StateJournal(stateDir, 'freezes', freezeRecordSchema);
}

export function toFreezeRecord(held: Pick<HeldFreeze, 'dom' | 'mountpoints' | 'frozenAt' | 'thawAt'>): FreezeRecord {
  const { dom } = held;
  return {
    id: domainKey(dom),
    host: dom.host,
    uuid: dom.uuid,
    name: dom.name,
    domId: dom.id,
    mountpoints: held.mountpoints,
    frozenAt: held.frozenAt.toISOString(),
    thawAt: held.thawAt.toISOString(),
  };
}

export type RecoveryVerdict =
  | { action: 'drop'; why: string }
  | { action: 'retry'; why: string }
  | { action: 'hold'; dom: DomainRef; overdue: boolean };

/**
 * What to do with a recorded freeze, given what looking its domain up (by host and UUID) gave: the domain gone,
 * stopped or restarted since means no freeze is left to thaw; a host not answering yet means ask again.
 */
export function recoveryVerdict(record: FreezeRecord, lookup: { dom: DomainRef } | { error: unknown }, now = Date.now()): RecoveryVerdict {
  if ('error' in lookup) {
    const err = lookup.error;
    if (err instanceof GatewayError && err.code === 'domain_not_found') return { action: 'drop', why: 'the domain no longer exists' };
    return { action: 'retry', why: err instanceof Error ? err.message : String(err) };
  }
  const { dom } = lookup;
  if (dom.id === -1) return { action: 'drop', why: 'the domain is not running: its file systems are not frozen' };
  // Agent-socket domains have no libvirt id (0 throughout): only libvirt's ids tell a restart.
  if (record.domId > 0 && dom.id !== record.domId)
    return { action: 'drop', why: `the domain has restarted since (libvirt id ${record.domId}, now ${dom.id}): its freeze is gone` };
  return { action: 'hold', dom, overdue: Date.parse(record.thawAt) <= now };
}
