// The listener's TLS: certificate files read at start-up into Node's https options. Which identity a client
// certificate proves is src/auth/client-certificate.ts.
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import type { Config } from '../config/schema.js';

type TlsConfig = NonNullable<Config['listen']['tls']>;

/** The file's contents; a path that cannot be read stops start-up naming the config field, never the contents. */
function readPem(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`listen.tls.${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function httpsOptions(tls: TlsConfig): ServerOptions {
  return {
    cert: readPem('certFile', tls.certFile),
    key: readPem('keyFile', tls.keyFile),
    ...(tls.caFile ? { ca: readPem('caFile', tls.caFile) } : {}),
    // optional: the handshake lets an unverified certificate through, and clientCertificate() refuses it.
    requestCert: tls.clientCerts !== 'off',
    rejectUnauthorized: tls.clientCerts === 'required',
  };
}
