// Source lines stay readable: none of the TypeScript and .mjs files under src/, test/, bench/ and scripts/ (the
// recorded fixtures of test/fixtures/ aside) has a line over 160 characters. Biome formats to 140 columns but
// never breaks a string literal or a comment: split those by hand (string + string, or a rewrapped comment).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const MAX_LINE = 160;
const root = fileURLToPath(new URL('../..', import.meta.url));

/** The files git knows or would add (tracked, and untracked but not ignored), under the source folders. */
function sourceFiles(): string[] {
  const args = ['-C', root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', 'src', 'test', 'bench', 'scripts'];
  const listed = execFileSync('git', args, { encoding: 'utf8' });
  const files = listed.split('\0').filter((f) => /\.(ts|mjs)$/.test(f) && !f.startsWith('test/fixtures/'));
  // A file deleted in the work tree but not yet in the index is not source any more.
  return [...new Set(files)].filter((f) => existsSync(join(root, f))).sort();
}

it(`keeps every line of src, test, bench and scripts (.ts, .mjs; not test/fixtures) to ${MAX_LINE} characters`, () => {
  const files = sourceFiles();
  expect(files).toContain('test/unit/line-width.test.ts');
  const tooLong: string[] = [];
  for (const file of files) {
    const lines = readFileSync(join(root, file), 'utf8').split(/\r?\n/);
    for (const [i, line] of lines.entries()) {
      const width = [...line].length;
      if (width > MAX_LINE) tooLong.push(`${file}:${i + 1}: ${width} characters`);
    }
  }
  expect(tooLong, `lines over ${MAX_LINE} characters:\n${tooLong.join('\n')}`).toEqual([]);
});
