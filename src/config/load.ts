// Reads the config file (JSON or YAML), lays the environment over it and validates the result.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { checkedConfigSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigSources {
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** The file named by --config PATH, or by QGA_GATEWAY_CONFIG. */
export function configPath({ argv = process.argv.slice(2), env = process.env }: ConfigSources): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0) {
    const p = argv[i + 1];
    if (!p) throw new ConfigError('--config needs a file path');
    return p;
  }
  const eq = argv.find((a) => a.startsWith('--config='));
  if (eq) return eq.slice('--config='.length);
  return env.QGA_GATEWAY_CONFIG || undefined;
}

function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    return path.endsWith('.json') ? JSON.parse(text) : (parseYaml(text) ?? {});
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

function setIn(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let node = obj;
  for (const key of path.slice(0, -1)) {
    let next = node[key];
    if (!next || typeof next !== 'object') {
      next = {};
      node[key] = next;
    }
    node = next as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function envNumber(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new ConfigError(`environment variable ${name}: not a number: '${value}'`);
  return n;
}

function envBoolean(name: string, value: string): boolean {
  if (/^(1|true|yes)$/i.test(value)) return true;
  if (/^(0|false|no)$/i.test(value)) return false;
  throw new ConfigError(`environment variable ${name}: not a boolean (1/0, true/false, yes/no): '${value}'`);
}

/** Environment variables win over the file: they are what a service manager or container sets per host. */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  if (env.PORT) setIn(raw, ['listen', 'port'], envNumber('PORT', env.PORT));
  if (env.HOST) setIn(raw, ['listen', 'host'], env.HOST);
  if (env.LIBVIRT_URI) setIn(raw, ['libvirt', 'uri'], env.LIBVIRT_URI);
  if (env.LIBVIRT_SOCKET) setIn(raw, ['libvirt', 'socketPath'], env.LIBVIRT_SOCKET);
  if (env.LOG_LEVEL) setIn(raw, ['log', 'level'], env.LOG_LEVEL);
  if (env.STATE_DIRECTORY) setIn(raw, ['state', 'dir'], env.STATE_DIRECTORY);
  if (env.QGA_GATEWAY_CHECK_ANSWERS)
    setIn(raw, ['openapi', 'checkAnswers'], envBoolean('QGA_GATEWAY_CHECK_ANSWERS', env.QGA_GATEWAY_CHECK_ANSWERS));
}

export function formatZodError(err: z.ZodError, where: string): string {
  const lines = err.issues.map((issue) => {
    const field = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    return `  ${field}: ${issue.message}`;
  });
  return `invalid configuration in ${where}:\n${lines.join('\n')}`;
}

export function parseConfig(raw: unknown, where = 'config'): Config {
  const result = checkedConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatZodError(result.error, where));
  return result.data;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const path = configPath(sources);
  const fromFile = path ? readConfigFile(path) : {};
  if (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile)) {
    throw new ConfigError(`config file ${path} must hold an object at the top level`);
  }
  const raw = structuredClone(fromFile) as Record<string, unknown>;
  applyEnv(raw, env);
  const where = path ? `${path} (and environment)` : 'environment';
  const config = parseConfig(raw, where);
  if (!config.auth.identitiesFile) return config;
  // Identities kept apart (a Kubernetes Secret, say) join the inline ones, and the whole is checked again
  // (duplicate names and token hashes across both).
  const file = config.auth.identitiesFile;
  const extra = readConfigFile(file);
  if (!Array.isArray(extra)) throw new ConfigError(`auth.identitiesFile ${file} must hold a list of identities`);
  const auth = (raw.auth ?? {}) as Record<string, unknown>;
  const inline = Array.isArray(auth.identities) ? auth.identities : [];
  raw.auth = { ...auth, identities: [...inline, ...extra] };
  return parseConfig(raw, `${where} with identities from ${file}`);
}
