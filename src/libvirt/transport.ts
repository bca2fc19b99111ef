// Where a connection to libvirtd goes and how the byte stream is set up: a unix socket, plain TCP, or TLS
// with a client certificate as libvirt's qemu+tls:// transport does it.
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { ConnectionError } from './errors.js';

export interface TlsTransport {
  kind: 'tls';
  host: string;
  port: number;
  /** The name the server's certificate must carry (and the SNI name); default: host. */
  servername?: string;
  /** PEM files, read at every connect so that renewed certificates are picked up on reconnect. */
  certFile: string;
  keyFile: string;
  caFile: string;
  /** false = libvirt's no_verify=1: the server's certificate is not checked (ours is still presented). */
  verify: boolean;
}

export type Transport = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number } | TlsTransport;

export function describeTransport(transport: Transport): string {
  if (transport.kind === 'unix') return transport.path;
  const host = net.isIPv6(transport.host) ? `[${transport.host}]` : transport.host;
  return `${transport.kind === 'tls' ? 'tls://' : ''}${host}:${transport.port}`;
}

/**
 * Opens the byte stream to libvirtd, ready for RPC packets. One deadline covers everything: for TLS that is the
 * TCP connect, the handshake and the server's confirmation byte.
 */
export function connectTransport(transport: Transport, timeoutMs: number): Promise<net.Socket> {
  return transport.kind === 'tls' ? connectTls(transport, timeoutMs) : connectPlain(transport, timeoutMs);
}

function connectPlain(transport: Exclude<Transport, TlsTransport>, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      transport.kind === 'unix' ? net.connect({ path: transport.path }) : net.connect({ host: transport.host, port: transport.port });
    const where = describeTransport(transport);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectionError(`connecting to libvirtd at ${where} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new ConnectionError(`cannot connect to libvirtd at ${where}: ${err.message}`));
    });
  });
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConnectionError(`cannot read the TLS ${what} ${file}: ${e.code ?? e.message}`);
  }
}

/** OpenSSL's verification codes (what Node puts in authorizationError) that deserve words of their own. */
const VERIFY_REASONS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it is not signed by that CA',
  UNABLE_TO_GET_ISSUER_CERT: 'it is not signed by that CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it is not signed by that CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'its chain ends in a CA other than that one',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed',
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet',
  CERT_SIGNATURE_FAILURE: 'its signature is invalid',
};

/**
 * libvirt's TLS transport (virNetClientSetTLSSession): a TLS handshake with our client certificate, our own check of
 * the server's certificate against the CA and the host name, then ONE byte from the server: 1 when it accepted our
 * certificate (and address). libvirtd closes the socket instead when it refuses us.
 */
async function connectTls(t: TlsTransport, timeoutMs: number): Promise<net.Socket> {
  const where = describeTransport(t);
  const started = Date.now();
  const [cert, key, ca] = await Promise.all([
    readPem(t.certFile, 'client certificate'),
    readPem(t.keyFile, 'client key'),
    readPem(t.caFile, 'CA certificate'),
  ]);
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext({ cert, key, ca });
  } catch (err) {
    throw new ConnectionError(
      `the TLS client certificate ${t.certFile}, its key ${t.keyFile} or the CA ${t.caFile} cannot be used: ${(err as Error).message}`,
    );
  }
  const name = t.servername ?? t.host;
  const remainingMs = Math.max(1, timeoutMs - (Date.now() - started));

  return new Promise((resolve, reject) => {
    let identityError: Error | undefined;
    let stage: 'handshake' | 'confirmation' = 'handshake';
    const socket = tls.connect({
      host: t.host,
      port: t.port,
      secureContext,
      // SNI takes no IP addresses (RFC 6066); the identity check below still covers them.
      ...(net.isIP(name) ? {} : { servername: name }),
      // Checked after the handshake, like libvirt, so that the error can say why.
      rejectUnauthorized: false,
      checkServerIdentity: (_host, peer) => {
        identityError = tls.checkServerIdentity(name, peer);
        return identityError;
      },
    });

    const cleanup = () => {
      clearTimeout(timer);
      socket.off('secureConnect', onSecure);
      socket.off('readable', onReadable);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('end', onClose);
    };
    const fail = (message: string) => {
      cleanup();
      // A late error from the torn-down socket must not become an unhandled 'error' event.
      socket.on('error', () => {});
      socket.destroy();
      reject(new ConnectionError(message));
    };
    const timer = setTimeout(() => {
      const waiting = stage === 'handshake' ? 'TCP connect or TLS handshake' : "waiting for the server's confirmation byte";
      fail(`connecting to libvirtd at ${where} timed out after ${timeoutMs} ms (${waiting})`);
    }, remainingMs);

    function onSecure() {
      if (t.verify && !socket.authorized) {
        if (identityError) {
          fail(`TLS to libvirtd at ${where}: the server's certificate is not for '${name}': ${identityError.message}`);
          return;
        }
        const code = String(socket.authorizationError);
        const reason = VERIFY_REASONS[code];
        fail(
          `TLS to libvirtd at ${where}: the server's certificate does not verify against the CA in ${t.caFile}: ${reason ? `${reason} (${code})` : code}`,
        );
        return;
      }
      stage = 'confirmation';
      socket.on('readable', onReadable);
      // Bytes may already be buffered: 'readable' only fires for new ones.
      onReadable();
    }

    function onReadable() {
      // read(1) takes exactly the confirmation byte and leaves whatever follows for the RPC reader.
      const byte = socket.read(1) as Buffer | null;
      if (byte === null) return;
      if (byte[0] !== 1) {
        fail(
          `TLS to libvirtd at ${where}: the server refused our client certificate ${t.certFile} (server verification of our ` +
            `certificate or IP address failed: it sent ${byte[0]} instead of 1)`,
        );
        return;
      }
      cleanup();
      socket.setNoDelay(true);
      resolve(socket);
    }

    function onError(err: Error) {
      fail(
        stage === 'handshake'
          ? `cannot connect to libvirtd at ${where} (TCP connect or TLS handshake): ${err.message}`
          : `TLS to libvirtd at ${where}: the server refused our client certificate ${t.certFile}: ${err.message}`,
      );
    }

    function onClose() {
      fail(
        stage === 'handshake'
          ? `TLS to libvirtd at ${where}: the server closed the connection during the handshake`
          : `TLS to libvirtd at ${where}: the server closed the connection instead of confirming: ` +
              `it refused our client certificate ${t.certFile} or our address`,
      );
    }

    socket.once('secureConnect', onSecure);
    socket.on('error', onError);
    socket.once('end', onClose);
    socket.once('close', onClose);
  });
}
