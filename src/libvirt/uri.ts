// Turns a libvirt URI into where to connect and what to ask for, as libvirt's remote driver does.
import { existsSync } from 'node:fs';
import type { Transport } from './connection.js';

export interface ResolvedUri {
  transport: Transport;
  /** What CONNECT_OPEN asks for: the URI without its transport and client-side parameters. */
  name: string;
}

export const DEFAULT_TCP_PORT = 16509;

/** Sockets of the modular daemon and of the monolithic one; like libvirt's own client, the modular one wins when it exists. */
function defaultSocket(dir: string, exists: (p: string) => boolean): string {
  const modular = `${dir}/virtqemud-sock`;
  return exists(modular) ? modular : `${dir}/libvirt-sock`;
}

export function resolveUri(uri: string, socketOverride?: string, exists: (p: string) => boolean = existsSync): ResolvedUri {
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    throw new RangeError(`not a libvirt URI: ${uri}`);
  }
  const [driver, transportName = 'unix'] = parsed.protocol.replace(/:$/, '').split('+');
  if (driver !== 'qemu') throw new RangeError(`unsupported libvirt driver '${driver}' in ${uri}: only qemu is supported`);
  const path = parsed.pathname || '/system';
  if (path !== '/system' && path !== '/session') throw new RangeError(`unsupported libvirt URI path '${path}' in ${uri}`);
  const name = `qemu://${path}`;

  if (transportName === 'unix') {
    if (parsed.host) throw new RangeError(`a unix libvirt URI names no host: ${uri}`);
    const fromUri = parsed.searchParams.get('socket');
    const dir = path === '/session' ? `${process.env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.() ?? 0}`}/libvirt` : '/run/libvirt';
    return { transport: { kind: 'unix', path: socketOverride ?? fromUri ?? defaultSocket(dir, exists) }, name };
  }
  if (transportName === 'tcp') {
    if (!parsed.hostname) throw new RangeError(`a tcp libvirt URI needs a host: ${uri}`);
    const port = parsed.port ? Number(parsed.port) : DEFAULT_TCP_PORT;
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    return { transport: { kind: 'tcp', host, port }, name };
  }
  throw new RangeError(`unsupported libvirt transport '${transportName}' in ${uri}: use unix or tcp`);
}
