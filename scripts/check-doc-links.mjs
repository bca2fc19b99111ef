// Checks every relative link and #anchor of the project's Markdown files (README.md, docs/, bench/...): a file moved or a
// heading renamed breaks no link unnoticed. No network: external links are only counted. test/unit/docs.test.ts runs it.
// Usage: node scripts/check-doc-links.mjs [ROOT]
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';

const root = resolve(process.argv[2] ?? '.');
const files = execFileSync('git', ['-C', root, 'ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => f && !f.includes('node_modules/'));

/** GitHub's heading anchors (github-slugger): lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchorsOf(text) {
  const seen = new Map();
  const out = new Set();
  let inFence = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    if (inFence) continue;
    const m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const plain = m[2].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*_]/g, (c) => (c === '_' ? '_' : ''));
    const slug = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n ? `${slug}-${n}` : slug);
  }
  // explicit <a id="…"> / name="…" anchors
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(m[1]);
  return out;
}

/** Inline links outside fenced code blocks and code spans. */
function linksOf(text) {
  const links = [];
  let inFence = false;
  const lines = text.split('\n');
  // join continuation lines of a paragraph so that a link text broken over two lines is still found
  let para = [];
  const flush = () => {
    const joined = para
      .map((p) => p.text)
      .join('\n')
      .replace(/`[^`\n]*`/g, (s) => ' '.repeat(s.length));
    for (const m of joined.matchAll(/!?\[((?:[^[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const before = joined.slice(0, m.index).split('\n').length - 1;
      links.push({ line: para[before].no, text: m[1], target: m[2] });
    }
    para = [];
  };
  for (const [i, line] of lines.entries()) {
    if (/^\s*(```|~~~)/.test(line)) {
      flush();
      inFence = !inFence;
      continue;
    }
    if (inFence || (/^ {4}/.test(line) && para.length === 0)) continue; // indented code block
    if (!line.trim()) {
      flush();
      continue;
    }
    para.push({ text: line, no: i + 1 });
  }
  flush();
  return links;
}

const anchorCache = new Map();
const anchorsFor = (file) => {
  if (!anchorCache.has(file)) anchorCache.set(file, anchorsOf(readFileSync(file, 'utf8')));
  return anchorCache.get(file);
};

let checked = 0;
let external = 0;
const broken = [];
for (const f of files) {
  const abs = join(root, f);
  for (const link of linksOf(readFileSync(abs, 'utf8'))) {
    const { target } = link;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
      external++;
      continue;
    }
    checked++;
    const [pathPart, anchor] = target.split('#', 2);
    const dest = pathPart ? resolve(dirname(abs), decodeURI(pathPart)) : abs;
    const where = `${f}:${link.line} [${link.text.replace(/\s+/g, ' ')}](${target})`;
    if (!existsSync(dest)) {
      broken.push(`${where}: no file ${relative(root, dest)}`);
      continue;
    }
    if (anchor !== undefined) {
      if (statSync(dest).isDirectory() || !dest.endsWith('.md')) {
        broken.push(`${where}: anchor into a non-Markdown target`);
      } else if (!anchorsFor(dest).has(anchor)) {
        broken.push(`${where}: no heading #${anchor} in ${relative(root, dest)}`);
      }
    }
  }
}
console.log(`${files.length} Markdown files, ${checked} relative links and anchors checked, ${external} external links not followed`);
for (const b of broken) console.log(`BROKEN ${b}`);
console.log(broken.length ? `${broken.length} broken` : 'all resolve');
process.exitCode = broken.length ? 1 : 0;
