// Prometheus's own linter on a scrape: `promtool check metrics` (scripts/promtool.sh installs Debian's prometheus
// package when it is missing, its server neither started nor enabled, and prints the tool's path).
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** promtool's path; installs the package on the first call on a host without it (a minute or so: call it in a beforeAll). */
export function promtoolPath(): string {
  return execFileSync('bash', ['scripts/promtool.sh'], { cwd: root, encoding: 'utf8' }).trim();
}

/** promtool's verdict on an exposition: its exit status and everything it printed (no finding: 0 and ''). */
export function checkMetrics(promtool: string, text: string): { status: number | null; output: string } {
  const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Each family of the exposition by name, with its type (from its # TYPE line). */
export function metricFamilies(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** The value of the sample written exactly so (its name and labels as the exposition writes them); undefined when absent. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
