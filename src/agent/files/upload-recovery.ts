// At start-up: what a previous run of the gateway left of its atomic uploads (state.dir/uploads/): it was
// killed mid-upload, or the agent was gone when it tried to clean up. For each record, the handle it held is
// closed (unless the domain has restarted since, when the number may name another file) and the temporary
// file removed; the target was never touched. A record whose domain does not answer is kept for the next start.
import type { Logger } from 'pino';
import { GatewayError } from '../../errors.js';
import type { StateJournal } from '../../state/journal.js';
import type { GuestProgram } from '../exec/guest-program.js';
import { removeProgram } from './replace-commands.js';
import type { UploadRecord } from './upload-temp.js';
import type { DomainRef } from '../../domains/vocabulary.js';

export interface UploadRecoveryDeps {
  log: Logger;
  run(dom: DomainRef, program: GuestProgram): Promise<{ exitCode: number | null; stderr: string }>;
  closeHandle(dom: DomainRef, handle: number): Promise<unknown>;
  forget(record: UploadRecord): Promise<void>;
}

type Lookup = (host: string, uuid: string) => Promise<DomainRef>;

/** At start-up, before the gateway serves: the records a previous run left (unreadable ones set aside and logged). */
export async function readUploadRecords(journal: StateJournal<UploadRecord>, log: Logger): Promise<UploadRecord[]> {
  const { entries, corrupt } = await journal.read().catch((err: unknown) => {
    log.error({ err: (err as Error).message }, 'upload journal unreadable');
    return { entries: [], corrupt: [] };
  });
  for (const c of corrupt) log.error({ file: c.file, keptAs: c.keptAs, reason: c.reason }, 'upload journal: unreadable record set aside');
  return entries.map((e) => e.entry);
}

export async function recoverUploads(deps: UploadRecoveryDeps, records: UploadRecord[], lookup: Lookup): Promise<void> {
  await Promise.all(records.map((entry) => recoverOne(deps, lookup, entry)));
}

async function recoverOne(deps: UploadRecoveryDeps, lookup: Lookup, entry: UploadRecord): Promise<void> {
  const { log } = deps;
  try {
    const dom = await lookupWhenAnswering(lookup, entry.host, entry.uuid);
    if (entry.handle !== undefined && (entry.domId <= 0 || dom.id === entry.domId)) await closeStale(deps, dom, entry.handle);
    const outcome = await deps.run(dom, removeProgram(entry.os, entry.temp));
    if (outcome.exitCode !== 0) throw new Error(`exit ${outcome.exitCode}: ${outcome.stderr.trim()}`);
    log.info(
      { domain: dom.name, temp: entry.temp, target: entry.target },
      'upload journal: removed the temporary file of an upload an earlier run did not finish',
    );
    await deps.forget(entry);
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'domain_not_found') {
      log.warn({ host: entry.host, uuid: entry.uuid, temp: entry.temp }, 'upload journal: the domain no longer exists; record dropped');
      await deps.forget(entry);
      return;
    }
    log.warn(
      { host: entry.host, domain: entry.name, temp: entry.temp, err: (err as Error).message },
      'upload journal: temporary file not removed yet; the next start tries again',
    );
  }
}

/** A handle a killed gateway left open: closed so that qemu-ga lets go of the file (an error: it is gone already). */
async function closeStale(deps: UploadRecoveryDeps, dom: DomainRef, handle: number): Promise<void> {
  try {
    await deps.closeHandle(dom, handle);
    deps.log.info({ domain: dom.name, handle }, 'upload journal: closed a guest file handle an earlier run left open');
  } catch (err) {
    deps.log.info(
      { domain: dom.name, handle, err: (err as Error).message },
      'upload journal: the handle an earlier run left is no longer open',
    );
  }
}

/** A host still connecting at start-up answers libvirt_unavailable for a while: ask again, for up to a minute. */
async function lookupWhenAnswering(lookup: Lookup, host: string, uuid: string, attempts = 30, retryMs = 2_000): Promise<DomainRef> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await lookup(host, uuid);
    } catch (err) {
      if (attempt >= attempts || (err instanceof GatewayError && err.code === 'domain_not_found')) throw err;
      await new Promise((r) => setTimeout(r, retryMs).unref());
    }
  }
}
