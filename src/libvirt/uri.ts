// Turns a libvirt URI into where to connect and what to ask for, as libvirt's remote driver does.
import { existsSync } from 'node:fs';
import type { Transport } from './connection.js';

export interface ResolvedUri {
  transport: Transport;
  /** What CONNECT_OPEN asks for: the URI without its transport and client-side parameters. */
  name: string;
}

export const DEFAULT_TCP_PORT = 16509;
export const DEFAULT_TLS_PORT = 16514;

/** The client's TLS files as a host's config entry gives them; each one missing falls back to the URI, then to libvirt's defaults. */
export interface TlsFiles {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
}

/** Where libvirt's client looks when nothing else is said (virnettlsconfig.c, system-wide locations). */
export const DEFAULT_TLS_FILES = {
  caFile: '/etc/pki/CA/cacert.pem',
  certFile: '/etc/pki/libvirt/clientcert.pem',
  keyFile: '/etc/pki/libvirt/private/clientkey.pem',
} as const;

/** Sockets of the modular daemon and of the monolithic one; like libvirt's own client, the modular one wins when it exists. */
function defaultSocket(dir: string, exists: (p: string) => boolean): string {
  const modular = `${dir}/virtqemud-sock`;
  return exists(modular) ? modular : `${dir}/libvirt-sock`;
}

/** libvirt's ?pkipath=DIR: the CA, client certificate and key, all in DIR under fixed names. */
function pkiPathFiles(dir: string): Required<TlsFiles> {
  const d = dir.replace(/\/+$/, '');
  return { caFile: `${d}/cacert.pem`, certFile: `${d}/clientcert.pem`, keyFile: `${d}/clientkey.pem` };
}

export function resolveUri(uri: string, socketOverride?: string, exists: (p: string) => boolean = existsSync, tls?: TlsFiles): ResolvedUri {
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
  if (transportName === 'tcp' || transportName === 'tls') {
    if (!parsed.hostname) throw new RangeError(`a ${transportName} libvirt URI needs a host: ${uri}`);
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    if (transportName === 'tcp')
      return { transport: { kind: 'tcp', host, port: parsed.port ? Number(parsed.port) : DEFAULT_TCP_PORT }, name };
    const pkipath = parsed.searchParams.get('pkipath');
    const fromUri = pkipath ? pkiPathFiles(pkipath) : DEFAULT_TLS_FILES;
    const noVerify = parsed.searchParams.get('no_verify');
    if (noVerify !== null && noVerify !== '0' && noVerify !== '1') throw new RangeError(`no_verify must be 0 or 1 in ${uri}`);
    return {
      transport: {
        kind: 'tls',
        host,
        port: parsed.port ? Number(parsed.port) : DEFAULT_TLS_PORT,
        certFile: tls?.certFile ?? fromUri.certFile,
        keyFile: tls?.keyFile ?? fromUri.keyFile,
        caFile: tls?.caFile ?? fromUri.caFile,
        verify: noVerify !== '1',
      },
      name,
    };
  }
  throw new RangeError(`unsupported libvirt transport '${transportName}' in ${uri}: use unix, tcp or tls`);
}
