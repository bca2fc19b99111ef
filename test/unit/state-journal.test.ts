// The durable state journal on its own (src/state/journal.ts): one JSON file per entry, written whole or not at
// all, read back with bad files set aside (never deleted) and reported, writes to one entry kept in order, and a
// state directory that cannot be written answering 503 state_unavailable until it is fixed.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { GatewayError } from '../../src/errors.js';
import { StateJournal } from '../../src/state/journal.js';

const schema = z.strictObject({ id: z.string().min(1), value: z.number().int() });
type Entry = z.infer<typeof schema>;

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'qga-journal-'));
  roots.push(root);
  return root;
}

function journal(root = tempRoot()): StateJournal<Entry> {
  return new StateJournal(root, 'things', schema);
}

/** The file name the journal gives an id (sha256, first 32 hex digits). */
const fileOf = (id: string) => `${createHash('sha256').update(id).digest('hex').slice(0, 32)}.json`;

const sorted = (entries: { id: string; entry: Entry }[]) => [...entries].sort((a, b) => a.id.localeCompare(b.id));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('StateJournal', () => {
  it('reads back what was put, one file per entry named by the hashed id, ids with / and : included', async () => {
    const j = journal();
    const entries: Entry[] = [
      { id: 'local/0b2c-uuid', value: 1 },
      { id: 'qemu+ssh://root@h:22/system:vm/1', value: 2 },
      { id: 'plain', value: 3 },
    ];
    for (const e of entries) await j.put(e);
    expect(j.dir).toBe(join(roots[0]!, 'things'));
    expect(readdirSync(j.dir).sort()).toEqual(entries.map((e) => fileOf(e.id)).sort());
    expect(JSON.parse(readFileSync(join(j.dir, fileOf('qemu+ssh://root@h:22/system:vm/1')), 'utf8'))).toEqual(entries[1]);
    const read = await j.read();
    expect(read.corrupt).toEqual([]);
    expect(sorted(read.entries)).toEqual(sorted(entries.map((entry) => ({ id: entry.id, entry }))));
    // A second journal on the same directory (the next start) sees the same.
    expect(sorted((await journal(roots[0]).read()).entries)).toEqual(sorted(read.entries));
  });

  it('removes an entry, and removing one that is not there is fine', async () => {
    const j = journal();
    await j.put({ id: 'a/1', value: 1 });
    await j.put({ id: 'b:2', value: 2 });
    await j.remove('a/1');
    expect((await j.read()).entries).toEqual([{ id: 'b:2', entry: { id: 'b:2', value: 2 } }]);
    await expect(j.remove('a/1')).resolves.toBeUndefined();
    await expect(j.remove('never-there')).resolves.toBeUndefined();
    expect(readdirSync(j.dir)).toEqual([fileOf('b:2')]);
  });

  it('replaces an entry put twice', async () => {
    const j = journal();
    await j.put({ id: 'x', value: 1 });
    await j.put({ id: 'x', value: 2 });
    expect((await j.read()).entries).toEqual([{ id: 'x', entry: { id: 'x', value: 2 } }]);
    expect(readdirSync(j.dir)).toEqual([fileOf('x')]);
  });

  it('a removal queued right behind a put (not awaited in between) leaves nothing', async () => {
    const j = journal();
    for (let i = 0; i < 20; i++) {
      const put = j.put({ id: `race/${i}`, value: i });
      const removed = j.remove(`race/${i}`);
      await Promise.all([put, removed]);
    }
    // And several writes to one id queued at once land in the order queued.
    const writes = [j.put({ id: 'last', value: 1 }), j.put({ id: 'last', value: 2 }), j.remove('last'), j.put({ id: 'last', value: 3 })];
    await j.settled();
    await Promise.all(writes);
    expect((await j.read()).entries).toEqual([{ id: 'last', entry: { id: 'last', value: 3 } }]);
    expect(readdirSync(j.dir)).toEqual([fileOf('last')]);
  });

  it('reads a directory that does not exist as empty, without creating it', async () => {
    const root = tempRoot();
    const j = journal(root);
    expect(await j.read()).toEqual({ entries: [], corrupt: [] });
    expect(readdirSync(root)).toEqual([]);
  });

  it('sets aside and reports an unparsable file, a schema-invalid one and one whose id does not match its name; the rest are still read', async () => {
    const j = journal();
    await j.put({ id: 'good/1', value: 1 });
    await j.put({ id: 'good/2', value: 2 });
    const junk = join(j.dir, fileOf('junk'));
    writeFileSync(junk, '{"id": "junk", "value": ');
    const invalid = join(j.dir, fileOf('invalid'));
    writeFileSync(invalid, JSON.stringify({ id: 'invalid', value: 'not a number' }));
    // A valid entry under another entry's name (copied by hand, say).
    const misnamed = join(j.dir, fileOf('elsewhere'));
    writeFileSync(misnamed, JSON.stringify({ id: 'good/3', value: 3 }));

    const before = Date.now();
    const read = await j.read();
    expect(sorted(read.entries)).toEqual([
      { id: 'good/1', entry: { id: 'good/1', value: 1 } },
      { id: 'good/2', entry: { id: 'good/2', value: 2 } },
    ]);
    expect(read.corrupt).toHaveLength(3);
    const byFile = new Map(read.corrupt.map((c) => [c.file, c]));
    expect(byFile.get(junk)?.reason).toMatch(/JSON/);
    expect(byFile.get(invalid)?.reason).toMatch(/^value: /);
    expect(byFile.get(misnamed)?.reason).toBe('its id does not match its file name');
    for (const file of [junk, invalid, misnamed]) {
      const keptAs = byFile.get(file)!.keptAs!;
      expect(keptAs).toMatch(new RegExp(`^${file.replace(/[.]/g, '\\.')}\\.corrupt-\\d+$`));
      expect(Number(keptAs.split('.corrupt-')[1])).toBeGreaterThanOrEqual(before);
      // Kept, not deleted.
      expect(statSync(keptAs).isFile()).toBe(true);
    }
    expect(readFileSync(byFile.get(junk)!.keptAs!, 'utf8')).toBe('{"id": "junk", "value": ');
    expect(
      readdirSync(j.dir)
        .filter((n) => n.endsWith('.json'))
        .sort(),
    ).toEqual([fileOf('good/1'), fileOf('good/2')].sort());

    // Set aside once: the next read sees only the good entries.
    const again = await j.read();
    expect(again.corrupt).toEqual([]);
    expect(again.entries).toHaveLength(2);
  });

  it('leaves no temporary file behind, writes files 0600 in a 0700 directory', async () => {
    const j = journal();
    await Promise.all([j.put({ id: 'p/1', value: 1 }), j.put({ id: 'p/2', value: 2 }), j.put({ id: 'p/1', value: 11 })]);
    const names = readdirSync(j.dir);
    expect(names.sort()).toEqual([fileOf('p/1'), fileOf('p/2')].sort());
    expect(names.some((n) => n.endsWith('.tmp') || n.startsWith('.'))).toBe(false);
    for (const n of names) expect(statSync(join(j.dir, n)).mode & 0o777).toBe(0o600);
    expect(statSync(j.dir).mode & 0o777).toBe(0o700);
  });

  it('answers state_unavailable while the state directory cannot be made, and works once it can', async () => {
    const parent = tempRoot();
    const root = join(parent, 'state');
    // A regular file where the state directory should be: mkdir fails (as root, chmod would not stop it).
    writeFileSync(root, 'in the way');
    const j = journal(root);

    const err = await rejection(j.put({ id: 'a', value: 1 }));
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('state_unavailable');
    expect((err as GatewayError).status).toBe(503);
    expect((err as GatewayError).message).toContain(join(root, 'things'));
    // Tried again, still failing (the failed mkdir is not remembered as done, nor as failed for good).
    expect(((await rejection(j.put({ id: 'a', value: 1 }))) as GatewayError).code).toBe('state_unavailable');
    // Reading is refused too (not "empty"): the entries may be there, only unreachable.
    expect(((await rejection(j.read())) as GatewayError).code).toBe('state_unavailable');
    // And a removal that cannot reach the file says so rather than claiming it is gone.
    expect(((await rejection(j.remove('a'))) as GatewayError).code).toBe('state_unavailable');

    rmSync(root);
    await j.put({ id: 'a', value: 1 });
    expect((await j.read()).entries).toEqual([{ id: 'a', entry: { id: 'a', value: 1 } }]);
    expect(statSync(join(root, 'things')).mode & 0o777).toBe(0o700);
  });

  it('answers state_unavailable when its own directory (state.dir/<kind>) is a file, until a directory replaces it', async () => {
    const root = tempRoot();
    writeFileSync(join(root, 'things'), 'in the way');
    const j = journal(root);
    expect(((await rejection(j.put({ id: 'a', value: 1 }))) as GatewayError).code).toBe('state_unavailable');
    expect(readdirSync(root)).toEqual(['things']);
    rmSync(join(root, 'things'));
    mkdirSync(join(root, 'things'), { mode: 0o700 });
    await j.put({ id: 'a', value: 1 });
    expect(readdirSync(join(root, 'things'))).toEqual([fileOf('a')]);
  });
});
