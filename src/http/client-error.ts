// What the HTTP server answers when a request cannot be parsed or does not arrive in time, before Fastify has a
// request to hand to a route: Fastify's own handler logged the whole error at trace, and Node's parse errors
// carry the bytes read so far (err.rawPacket): a bearer token, a password body. This one logs the code only.
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { ERROR_TITLES, type ErrorCode } from '../errors.js';
import { PROBLEM_CONTENT_TYPE } from './problem.js';

interface Answer {
  status: number;
  detail: string;
  code: ErrorCode;
}

function answerFor(code: string | undefined): Answer {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return {
      status: 408,
      code: 'request_timeout',
      detail: 'the request did not arrive within the time allowed (limits.requestTimeoutMs, limits.headersTimeoutMs)',
    };
  }
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, code: 'headers_too_large', detail: 'the request headers are too large' };
  return { status: 400, code: 'invalid_request', detail: 'the request is not valid HTTP' };
}

function rawProblem({ status, detail, code }: Answer): string {
  const title = ERROR_TITLES[code];
  const body = JSON.stringify({ type: `urn:qga-gateway:problem:${code}`, title, status, detail, code });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    `Content-Type: ${PROBLEM_CONTENT_TYPE}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  return `${head.join('\r\n')}\r\n\r\n${body}`;
}

/** Fastify's clientErrorHandler: answers like Fastify did (400, 408, 431), as problem+json, then closes. */
export function clientErrorHandler(log: FastifyBaseLogger): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    log.debug({ code: err.code }, 'client error');
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    // An answer already under way (a 401 sent while the body still trickles in) must not get a second one
    // spliced into it; Node's own handler checks the same internal field.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) socket.write(rawProblem(answerFor(err.code)));
    socket.destroy();
  };
}
