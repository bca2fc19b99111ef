// mTLS: the client certificate a request's TLS connection presented. Only a certificate that verified against
// listen.tls.caFile counts; the Authenticator maps its fingerprint to an identity.
import { TLSSocket } from 'node:tls';

/** Nothing (plain HTTP, or no certificate), a certificate that did not verify, or a verified one's SHA-256 (lower-case hex). */
export type ClientCertificate = { verified: false } | { verified: true; fingerprint: string } | null;

export function clientCertificate(socket: unknown): ClientCertificate {
  if (!(socket instanceof TLSSocket)) return null;
  const cert = socket.getPeerCertificate();
  if (!cert?.fingerprint256) return null;
  if (!socket.authorized) return { verified: false };
  return { verified: true, fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase() };
}
