// The layers stay layers: no module of src/ imports itself back through others, and no folder does (src/agent's
// feature folders count as folders). The one exception is src/domains/vocabulary.ts, a leaf that imports nothing:
// the shared words (DomainRef, domain keys) that libvirt and the agent socket speak as well as the domains layer.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const LEAF = 'src/domains/vocabulary.ts';
const IMPORT = /^(?:import|export)[^;]*?from '(\.[^']+)'/gm;

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function folderOf(file: string): string {
  const parts = file.split('/');
  if (parts[1] === 'agent' && parts.length > 3) return parts.slice(0, 3).join('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : file;
}

/** Each strongly connected group of more than one node (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const files = new Map<string, Set<string>>();
const folders = new Map<string, Set<string>>();
for (const file of sources('src')) {
  for (const [, spec] of readFileSync(join(root, file), 'utf8').matchAll(IMPORT)) {
    const target = relative(root, normalize(join(root, dirname(file), spec!))).replace(/\.js$/, '.ts');
    if (!files.has(file)) files.set(file, new Set());
    files.get(file)!.add(target);
    const [from, to] = [folderOf(file), folderOf(target)];
    if (from === to || target === LEAF) continue;
    if (!folders.has(from)) folders.set(from, new Set());
    folders.get(from)!.add(to);
  }
}

it('no module of src/ imports itself back through others', () => {
  expect(files.size).toBeGreaterThan(100);
  expect(cycles(files)).toEqual([]);
});

it('no folder of src/ imports itself back through others (src/domains/vocabulary.ts, a leaf, aside)', () => {
  expect(folders.get('src/http')?.has('src/agent/core')).toBe(true);
  expect(cycles(folders)).toEqual([]);
});

it('the leaf imports nothing', () => {
  expect(readFileSync(join(root, LEAF), 'utf8').match(IMPORT)).toBeNull();
});
