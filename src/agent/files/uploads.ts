// Uploads into guest files, whole or not at all. An atomic upload (the default for create/replace) writes a
// temporary file beside the target, flushes and closes it, and renames it over the target with one guest-exec
// (replace-commands.ts): every failure before that rename (client gone, deadline, 413, agent error, shutdown)
// removes the temporary file and leaves the target as it was. Append and offset writes, and ?atomic=false,
// write the target in place: what an interrupted one wrote stays, and the caller is told how many bytes.
//
// The state machine, per upload: [check the agent can rename] → record the temporary file (state.dir) → open →
// write ... → flush → close → rename (the script removes the temporary file when it refuses) → forget the record.
// Any failure after open: close → remove the temporary file → forget the record (kept when the removal failed,
// so that the next start tries again).
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { GatewayError } from '../../errors.js';
import type { StateJournal } from '../../state/journal.js';
import { guestExec, guestExecStatus } from '../commands/exec.js';
import { guestFileClose, guestFileWrite } from '../commands/files.js';
import { writeStream, type WriteProgress } from './file-upload.js';
import type { GuestFileService } from './files.js';
import type { GuestFile, OpenOptions } from './guest-file.js';
import { guestGetOsinfo } from '../commands/system.js';
import { runGuestProgram, type GuestProgram, type ProgramOutcome } from '../exec/guest-program.js';
import { keptFromOutput, removeProgram, replaceProgram, REPLACE_EXIT, type GuestOsFamily } from './replace-commands.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import { readUploadRecords, recoverUploads } from './upload-recovery.js';
import { tempPathFor, uploadRecord, type UploadRecord } from './upload-temp.js';
import { domainKey, type DomainRef } from '../../domains/vocabulary.js';

export type UploadMode = 'truncate' | 'append' | 'offset';

export interface UploadRequest {
  mode: UploadMode;
  /** For mode offset. */
  offset?: number;
  /** Only with mode truncate. */
  atomic: boolean;
}

export interface UploadResult {
  bytesWritten: number;
  atomic: boolean;
  /** An atomic replace: whether the target was new, and whether its owner and mode were carried over. */
  kept: { created: boolean; mode: boolean; owner: boolean } | null;
}

/** What an upload had done when it failed: the caller's log and audit line say it. */
export interface UploadProgress extends WriteProgress {
  /** The temporary file of an atomic upload, once created. */
  temp: string | null;
  /** A temporary file the gateway could not remove (also kept in state.dir for the next start). */
  leftBehind: string | null;
}

const OS_CACHE_MS = 10 * 60_000;
/** An open that failed with these created no file: the agent refused it, or it was never sent. */
const NOTHING_OPENED = new Set([
  'file_not_found',
  'permission_denied',
  'invalid_request',
  'command_not_supported',
  'state_conflict',
  'domain_not_running',
  'agent_not_configured',
  'agent_not_connected',
  'agent_queue_full',
  'agent_busy',
]);

export class UploadService {
  private readonly osCache = new Map<string, { os: GuestOsFamily; expires: number }>();
  private readonly running = new Set<Promise<unknown>>();
  private journalWarned = false;

  constructor(
    private readonly agent: AgentService,
    private readonly files: GuestFileService,
    private readonly journal: StateJournal<UploadRecord>,
    private readonly config: Config['files'] & { maxWaitMs: number },
    private readonly log: Logger,
  ) {}

  /** Writes the body into the guest; `progress` says what was done when it throws. */
  upload(
    dom: DomainRef,
    path: string,
    how: UploadRequest,
    body: AsyncIterable<Buffer | string>,
    opts: OpenOptions,
    progress: UploadProgress,
  ): Promise<UploadResult> {
    const run =
      how.mode === 'truncate' && how.atomic
        ? this.replace(dom, path, body, opts, progress)
        : this.inPlace(dom, path, how, body, opts, progress);
    this.running.add(run);
    void run.finally(() => this.running.delete(run)).catch(() => {});
    return run;
  }

  /** Shutdown: waits (up to timeoutMs) for uploads to finish their rename or their clean-up. */
  async settle(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    await this.journal.settled();
  }

  private async inPlace(
    dom: DomainRef,
    path: string,
    how: UploadRequest,
    body: AsyncIterable<Buffer | string>,
    opts: OpenOptions,
    progress: UploadProgress,
  ): Promise<UploadResult> {
    const file = await this.openInPlace(dom, path, how.mode, opts);
    try {
      if (how.mode === 'offset') await file.seek(how.offset ?? 0, 'set');
      await writeStream(file, body, this.limits, progress);
    } finally {
      await file.close();
    }
    return { bytesWritten: progress.bytesWritten, atomic: false, kept: null };
  }

  /** r+ keeps the file's bytes but needs the file; a missing one is created with w. */
  private async openInPlace(dom: DomainRef, path: string, mode: UploadMode, opts: OpenOptions): Promise<GuestFile> {
    if (mode !== 'offset') return this.files.openFile(dom, path, mode === 'append' ? 'a' : 'w', opts);
    try {
      return await this.files.openFile(dom, path, 'r+', opts);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'file_not_found') return this.files.openFile(dom, path, 'w', opts);
      throw err;
    }
  }

  private async replace(
    dom: DomainRef,
    path: string,
    body: AsyncIterable<Buffer | string>,
    opts: OpenOptions,
    progress: UploadProgress,
  ): Promise<UploadResult> {
    const callOpts: AgentCallOptions = {
      timeoutMs: opts.timeoutMs ?? this.config.chunkTimeoutMs,
      signal: opts.signal,
      onCommand: opts.onCommand,
    };
    await this.ensureCanRename(dom, path, callOpts);
    const os = await this.osOf(dom, path, callOpts);
    const temp = tempPathFor(path);
    const record = uploadRecord(dom, os, temp, path);
    await this.journal.put(record).catch((err: unknown) => this.journalFailed(err));

    let file: GuestFile;
    try {
      file = await this.files.openFile(dom, temp, 'w', opts);
    } catch (err) {
      // A refusal created nothing. Otherwise (client gone or shutdown after the open, a lost reply) the file
      // may well exist: remove it, keeping the record if that fails, for the next start.
      if (err instanceof GatewayError && NOTHING_OPENED.has(err.code)) await this.forget(record);
      else await this.removeTemp(dom, record, progress);
      throw openError(err, path, temp);
    }
    progress.temp = temp;
    // The handle too: a gateway killed now would leave it open in qemu-ga, and only this record names it.
    await this.journal.put({ ...record, handle: file.handle }).catch((err: unknown) => this.journalFailed(err));
    try {
      await writeStream(file, body, this.limits, progress);
    } catch (err) {
      await file.close();
      await this.removeTemp(dom, record, progress);
      throw err;
    }
    await file.close();
    // From here the body is all in: finishing beats undoing, so the client leaving no longer stops anything.
    const kept = await this.rename(dom, record, progress, opts.onCommand);
    return { bytesWritten: progress.bytesWritten, atomic: true, kept };
  }

  private get limits() {
    return { chunkBytes: this.config.writeChunkBytes, maxBytes: this.config.maxUploadBytes };
  }

  /** 501 before anything is written when the agent cannot run the rename. */
  private async ensureCanRename(dom: DomainRef, path: string, opts: AgentCallOptions): Promise<void> {
    // An agent that cannot write at all says so first (501 command_not_supported, as for an in-place write).
    await this.agent.ensureSupported(dom, guestFileWrite.execute, opts);
    try {
      await this.agent.ensureSupported(dom, guestExec.execute, opts);
      await this.agent.ensureSupported(dom, guestExecStatus.execute, opts);
    } catch (err) {
      if (!(err instanceof GatewayError) || err.code !== 'command_not_supported') throw err;
      throw unavailable(
        dom,
        path,
        `${err.message}; the gateway renames the uploaded file over the target with guest-exec`,
        err.extras.agentVersion,
      );
    }
  }

  /** Windows or not, from guest-get-osinfo (cached); from the path's shape when the agent lacks that command. */
  private async osOf(dom: DomainRef, path: string, opts: AgentCallOptions): Promise<GuestOsFamily> {
    const key = domainKey(dom);
    const hit = this.osCache.get(key);
    if (hit && hit.expires > Date.now()) return hit.os;
    let os: GuestOsFamily;
    try {
      const info = await this.agent.execute(dom, guestGetOsinfo, undefined, opts);
      os = info.id === 'mswindows' ? 'windows' : 'posix';
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'command_not_supported') return /^[A-Za-z]:/.test(path) ? 'windows' : 'posix';
      throw err;
    }
    this.osCache.set(key, { os, expires: Date.now() + OS_CACHE_MS });
    return os;
  }

  /** Runs the rename; the script refuses a link or a directory and removes the temporary file itself then. */
  private async rename(
    dom: DomainRef,
    record: UploadRecord,
    progress: UploadProgress,
    onCommand?: (execute: string) => void,
  ): Promise<UploadResult['kept']> {
    let outcome: ProgramOutcome;
    try {
      outcome = await this.runProgram(dom, replaceProgram(record.os, record.temp, record.target, progress.bytesWritten), onCommand);
    } catch (err) {
      // Unknown whether the rename ran: removing the temporary file is right either way (absent once renamed).
      await this.removeTemp(dom, record, progress);
      throw renameError(err, dom, record);
    }
    if (outcome.exitCode === REPLACE_EXIT.ok) {
      await this.forget(record);
      return keptFromOutput(outcome.stdout);
    }
    await this.removeTemp(dom, record, progress);
    if (outcome.exitCode === REPLACE_EXIT.symlink) {
      throw new GatewayError(
        'not_a_regular_file',
        `${record.target} is a symbolic link: an atomic upload would replace the link itself. PUT the file it points to, ` +
          'or add ?atomic=false to write through the link',
        { domain: dom.name },
      );
    }
    if (outcome.exitCode === REPLACE_EXIT.notRegular) {
      const type = outcome.stderr.trim() || 'not a regular file';
      throw new GatewayError(
        'not_a_regular_file',
        `${record.target} is a ${type}: an atomic upload would put a plain file in its place. An upload names a file; ` +
          'to write to a device or FIFO, add ?atomic=false',
        { domain: dom.name },
      );
    }
    if (outcome.exitCode === REPLACE_EXIT.tempReplaced) {
      throw new GatewayError(
        'state_conflict',
        `the temporary file ${record.temp} was replaced or changed by someone in the guest before the rename: ${record.target} is unchanged`,
        { domain: dom.name },
      );
    }
    throw new GatewayError(
      'agent_error',
      `the rename of ${record.temp} over ${record.target} failed in the guest (exit ${outcome.exitCode}): ` +
        `${outcome.stderr.trim() || 'no message'}; the target is unchanged`,
      {
        domain: dom.name,
        command: guestExec.execute,
      },
    );
  }

  /** Removes the temporary file; on failure says so in the log and keeps its record for the next start. */
  private async removeTemp(dom: DomainRef, record: UploadRecord, progress: UploadProgress): Promise<void> {
    try {
      const outcome = await this.runProgram(dom, removeProgram(record.os, record.temp));
      if (outcome.exitCode !== 0) throw new Error(`exit ${outcome.exitCode}: ${outcome.stderr.trim()}`);
      await this.forget(record);
    } catch (err) {
      progress.leftBehind = record.temp;
      this.log.error(
        { domain: dom.name, temp: record.temp, target: record.target, err: (err as Error).message },
        'upload failed and its temporary file could not be removed; the next start tries again',
      );
    }
  }

  /** A fixed program of the gateway's, run to its end (never tied to the client: it finishes or undoes an upload). */
  runProgram(dom: DomainRef, program: GuestProgram, onCommand?: (execute: string) => void): Promise<ProgramOutcome> {
    return runGuestProgram(this.agent, dom, program, this.config.maxWaitMs, { timeoutMs: this.config.chunkTimeoutMs, onCommand });
  }

  private async forget(record: UploadRecord): Promise<void> {
    await this.journal.remove(record.id).catch((err: unknown) => this.journalFailed(err));
  }

  /** At start-up, before the gateway serves: the uploads a previous run left unfinished. */
  readRecords(): Promise<UploadRecord[]> {
    return readUploadRecords(this.journal, this.log);
  }

  /** Closes their handles and removes their temporary files (upload-recovery.ts). */
  recover(records: UploadRecord[], lookup: (host: string, uuid: string) => Promise<DomainRef>): Promise<void> {
    return recoverUploads(
      {
        log: this.log,
        run: (dom, program) => this.runProgram(dom, program),
        closeHandle: (dom, handle) => this.agent.execute(dom, guestFileClose, { handle }, { timeoutMs: this.config.closeTimeoutMs }),
        forget: (record) => this.forget(record),
      },
      records,
      lookup,
    );
  }

  /** Uploads go on without their record (the temporary name is recognisable); said once, not per upload. */
  private journalFailed(err: unknown): void {
    if (this.journalWarned) return;
    this.journalWarned = true;
    this.log.warn(
      { err: (err as Error).message },
      'uploads: state.dir cannot be written; a gateway killed mid-upload will leave its temporary file (.*.qga-gateway-*.tmp) behind',
    );
  }
}

function unavailable(dom: DomainRef, path: string, why: string, agentVersion?: string): GatewayError {
  return new GatewayError(
    'atomic_replace_unavailable',
    `cannot replace ${path} in one step: ${why}. Add ?atomic=false to write the file in place (an interrupted upload then leaves ` +
      'it partly written), or let qemu-ga run guest-exec',
    {
      domain: dom.name,
      command: guestExec.execute,
      ...(agentVersion ? { agentVersion } : {}),
    },
  );
}

/** The open of the temporary file failed: say it in terms of the target's directory. */
function openError(err: unknown, target: string, temp: string): unknown {
  if (!(err instanceof GatewayError)) return err;
  const dir = target.slice(0, Math.max(target.lastIndexOf('/'), target.lastIndexOf('\\')) + 1);
  if (err.code === 'file_not_found') {
    return new GatewayError(
      'file_not_found',
      `the guest cannot create ${temp} (an atomic upload writes a new file beside the target): ` +
        `the directory ${dir} does not exist, or its file system takes no new files (procfs, sysfs: add ?atomic=false)`,
      err.extras,
    );
  }
  if (err.code === 'permission_denied') {
    return new GatewayError(
      'permission_denied',
      `the guest refused to create ${temp} in ${dir} (an atomic upload writes a new file beside the target; ` +
        `?atomic=false writes the target in place): ${err.message}`,
      err.extras,
    );
  }
  return err;
}

function renameError(err: unknown, dom: DomainRef, record: UploadRecord): unknown {
  if (!(err instanceof GatewayError)) return err;
  if (err.code === 'guest_program_missing') {
    return unavailable(dom, record.target, `the guest cannot run the gateway's rename program (${err.message})`);
  }
  return new GatewayError(
    err.code,
    `${err.message}; the rename of the upload over ${record.target} may not have run: the target holds either its old or its new content, whole`,
    err.extras,
  );
}
