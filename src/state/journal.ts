// A small durable record of what the gateway holds in guests across calls (a freeze, an upload's temporary
// file), so that a gateway killed outright (SIGKILL, OOM, a crash) finds it again when it starts: one JSON
// file per entry under state.dir/<kind>/, written to a temporary name, fsynced and renamed over, so that an
// entry is either whole or absent, and one bad file never hides the others. Writes to one entry are ordered
// (a removal queued behind its own write never loses the race and resurrects the entry).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { GatewayError } from '../errors.js';

const SUFFIX = '.json';

export interface JournalRead<T> {
  entries: { id: string; entry: T }[];
  /** Files that could not be read or parsed: set aside under the same name + '.corrupt-<time>', never deleted. */
  corrupt: { file: string; keptAs: string | null; reason: string }[];
}

/** An entry's file name: the id hashed (host and UUID may hold characters a file name must not). */
function fileNameOf(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 32) + SUFFIX;
}

export class StateJournal<T extends { id: string }> {
  readonly dir: string;
  /** The last write queued per entry: the next waits for it. */
  private readonly tails = new Map<string, Promise<void>>();
  private made: Promise<void> | null = null;

  constructor(
    root: string,
    readonly kind: string,
    private readonly schema: z.ZodType<T>,
  ) {
    this.dir = join(root, kind);
  }

  /** Records the entry durably before returning; 503 state_unavailable when it cannot. */
  put(entry: T): Promise<void> {
    return this.queue(entry.id, () => this.write(entry));
  }

  /** Forgets the entry (a missing one is fine); 503 state_unavailable when the file stays. */
  remove(id: string): Promise<void> {
    return this.queue(id, async () => {
      try {
        await unlink(join(this.dir, fileNameOf(id)));
        // Durable like the write: a removal lost to a host crash would bring the entry back.
        await this.syncDir();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw unavailable(`could not remove ${this.kind} entry in ${this.dir}`, err);
      }
    });
  }

  /** Every entry on disk; unreadable ones are set aside and reported, the rest still answered. */
  async read(): Promise<JournalRead<T>> {
    const result: JournalRead<T> = { entries: [], corrupt: [] };
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return result;
      throw unavailable(`could not read ${this.dir}`, err);
    }
    // A write cut off by the gateway's death leaves its temporary file: its entry was never recorded.
    for (const name of names.filter((n) => n.startsWith('.') && n.endsWith('.tmp')))
      await rm(join(this.dir, name), { force: true }).catch(() => {});
    for (const name of names.filter((n) => n.endsWith(SUFFIX) && !n.startsWith('.'))) {
      const file = join(this.dir, name);
      let reason: string;
      try {
        const parsed = this.schema.safeParse(JSON.parse(await readFile(file, 'utf8')));
        if (parsed.success && fileNameOf(parsed.data.id) === name) {
          result.entries.push({ id: parsed.data.id, entry: parsed.data });
          continue;
        }
        reason = parsed.success
          ? 'its id does not match its file name'
          : parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
      } catch (err) {
        reason = (err as Error).message;
      }
      const keptAs = `${file}.corrupt-${Date.now()}`;
      const moved = await rename(file, keptAs).then(
        () => true,
        () => false,
      );
      result.corrupt.push({ file, keptAs: moved ? keptAs : null, reason });
    }
    return result;
  }

  /** Waits for every write queued so far (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }

  private queue(id: string, op: () => Promise<void>): Promise<void> {
    const run = (this.tails.get(id) ?? Promise.resolve()).catch(() => {}).then(op);
    const tail = run.catch(() => {});
    this.tails.set(id, tail);
    void tail.then(() => {
      if (this.tails.get(id) === tail) this.tails.delete(id);
    });
    return run;
  }

  private ensureDir(): Promise<void> {
    // Retried after a failure: the directory may be fixed while the gateway runs.
    this.made ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (err: unknown) => {
        this.made = null;
        throw err;
      },
    );
    return this.made;
  }

  private async write(entry: T): Promise<void> {
    const target = join(this.dir, fileNameOf(entry.id));
    const temp = join(this.dir, `.${fileNameOf(entry.id)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await this.ensureDir();
      const fh = await open(temp, 'wx', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(entry)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, target);
      await this.syncDir();
    } catch (err) {
      await rm(temp, { force: true }).catch(() => {});
      throw unavailable(`could not record ${this.kind} entry in ${this.dir}`, err);
    }
  }

  /** The rename itself is durable only once the directory is synced. */
  private async syncDir(): Promise<void> {
    const fh = await open(this.dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

function unavailable(what: string, err: unknown): GatewayError {
  return new GatewayError(
    'state_unavailable',
    `${what}: ${(err as Error).message ?? String(err)} (state.dir must be a writable directory)`,
  );
}
