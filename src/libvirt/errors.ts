// Errors of the wire client. The agent layer turns them into the gateway's typed errors.
import type { RemoteError } from './protocol.js';

/** An error reply from libvirtd, with libvirt's own code (virErrorNumber) and message. */
export class LibvirtError extends Error {
  override name = 'LibvirtError';
  readonly code: number;
  readonly domain: number;

  constructor(remote: Pick<RemoteError, 'code' | 'domain' | 'message'>) {
    super(remote.message ?? `libvirt error ${remote.code}`);
    this.code = remote.code;
    this.domain = remote.domain;
  }
}

/** The connection to libvirtd is not there (never opened, dropped, or closed) or gave up on a call. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
}
