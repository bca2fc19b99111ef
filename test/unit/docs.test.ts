// The documentation's own links: every relative link and #anchor of every Markdown file resolves
// (scripts/check-doc-links.mjs; the reference lives in docs/ and links across files).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

it('every relative link and anchor in README.md, docs/ and the other Markdown files resolves', () => {
  const out = execFileSync(process.execPath, ['scripts/check-doc-links.mjs', root], { cwd: root, encoding: 'utf8' });
  expect(out).toMatch(/all resolve/);
});
