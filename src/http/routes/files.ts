// Guest files over HTTP: GET streams a file out (Range, Content-Length), HEAD tells its size, PUT streams a body
// in. Every byte goes through guest-file-open/-seek/-read/-write/-flush/-close, one chunk per agent command.
import { z } from 'zod';
import { GuestFileReadStream } from '../../agent/files/file-read-stream.js';
import type { GuestFile, OpenOptions } from '../../agent/files/guest-file.js';
import type { UploadProgress } from '../../agent/files/uploads.js';
import { checkFilePath } from '../../auth/policies.js';
import { GatewayError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import {
  type ContentResponse,
  domainRoute,
  type DomainRequest,
  type DomainRoute,
  type ResponseHeader,
  type ScopedRequest,
} from '../domain-scope.js';
import { guestPathFromUrl } from '../file-path.js';
import { parseRange } from '../range.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';

const OCTET_STREAM = 'application/octet-stream';
/** Bytes, as OpenAPI 3.1 says it (3.0's format: binary is gone). */
const bytesSchema = z.string().meta({ contentMediaType: OCTET_STREAM });

const pathParams = z.object({
  '*': z
    .string()
    .describe(
      "The guest path without its leading '/', percent-encoded as needed (etc/os-release); a Windows path with its drive: C:/Windows/win.ini",
    ),
});

const HEADERS = {
  'Content-Length': {
    description: "The body's length in bytes; absent when the file cannot tell its size (procfs)",
    type: 'integer',
    minimum: 0,
  },
  'Accept-Ranges': { description: 'bytes, when the file has a size: a Range request is served', type: 'string', enum: ['bytes'] },
  'Content-Range': { description: 'Which bytes of how many: bytes START-END/SIZE', type: 'string' },
} satisfies Record<string, ResponseHeader>;

const binaryBody = (description: string, headers: (keyof typeof HEADERS)[]): ContentResponse => ({
  description,
  headers: Object.fromEntries(headers.map((h) => [h, HEADERS[h]])),
  content: { [OCTET_STREAM]: { schema: bytesSchema } },
});

const rangeHeader = z.looseObject({
  range: z
    .string()
    .optional()
    .describe(
      'One byte range, bytes=START-END, bytes=START- or bytes=-LENGTH: answered 206; several ranges are ignored (200, the whole file)',
    ),
});

const uploadQuery = z.object({
  mode: z
    .enum(['truncate', 'append'])
    .optional()
    .describe('truncate (default): create or replace the file; append: create or add to its end. Not with offset'),
  offset: z.coerce
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('Write at this byte offset, keeping the rest of the file (created when missing)'),
  atomic: z
    .enum(['true', 'false'])
    .optional()
    .describe(
      'Replacing (mode truncate): true (default) writes a temporary file beside the target and renames it over the target at the ' +
        'end, so that the file is replaced whole or not at all; false writes the target in place. ' +
        'Append and offset writes are always in place',
    ),
});

const fileWrittenSchema = z
  .object({
    domain: domainRefSchema,
    path: z.string().describe('The guest path written'),
    mode: z.enum(['truncate', 'append', 'offset']),
    offset: z.number().int().nullable().describe('Where the write began, for mode offset'),
    bytesWritten: z.number().int(),
    atomic: z.boolean().describe('true: written to a temporary file and renamed over the target in one step; false: written in place'),
    created: z.boolean().nullable().describe('Atomic: whether the target did not exist before; null when written in place'),
    keptOwner: z
      .boolean()
      .nullable()
      .describe(
        "Atomic: whether the replaced file's owner was given to the new one (needs the agent to run as root); null when new or in place",
      ),
    keptMode: z
      .boolean()
      .nullable()
      .describe("Atomic: whether the replaced file's permission bits were given to the new one; null when new or in place"),
  })
  .meta({
    id: 'FileWritten',
    example: {
      domain: EXAMPLE_DOMAIN,
      path: '/etc/app.conf',
      mode: 'truncate',
      offset: null,
      bytesWritten: 12,
      atomic: true,
      created: false,
      keptOwner: true,
      keptMode: true,
    },
  });

/** The request log names each command once: a 1 GiB download is a thousand guest-file-reads. */
function onceEach(opts: OpenOptions): OpenOptions {
  const seen = new Set<string>();
  return {
    ...opts,
    onCommand: (execute) => {
      if (seen.has(execute)) return;
      seen.add(execute);
      opts.onCommand?.(execute);
    },
  };
}

interface SizedFile {
  file: GuestFile;
  size: number | null;
}

/** The guest path a file route names, refused (403) unless the identity's file policy allows `access` to it. */
function allowedPath(request: Pick<ScopedRequest<typeof pathParams>, 'params' | 'identity'>, access: 'read' | 'write'): string {
  const path = guestPathFromUrl(request.params['*']);
  checkFilePath(request.identity, access, path);
  return path;
}

export function fileRoutes({ config, files, uploads }: Gateway): DomainRoute[] {
  const cfg = config.files;

  /** Opens the file for reading and learns its size (null when the file cannot tell). Closes it if that fails. */
  const openForRead = async (request: DomainRequest, path: string): Promise<SizedFile> => {
    const file = await files.openFile(request.domain, path, 'r', onceEach(request.agentOpts));
    try {
      return { file, size: await file.size() };
    } catch (err) {
      await file.close();
      throw err;
    }
  };

  return [
    domainRoute({
      operationId: 'headFile',
      method: 'HEAD',
      path: '/files/*',
      permission: 'files:read',
      tags: ['files'],
      summary: "A guest file's size",
      description:
        'Agent commands: guest-file-open (mode r), guest-file-seek (whence end), guest-file-close. Content-Length is the size; ' +
        'absent when the file cannot tell (procfs).',
      params: pathParams,
      response: {
        200: binaryBody('No body (HEAD): Content-Length is the size, with Accept-Ranges: bytes', ['Content-Length', 'Accept-Ranges']),
      },
      problems: [403, 501],
      check: (request) => allowedPath(request, 'read'),
      handler: async (request, reply, path) => {
        const { file, size } = await openForRead(request, path);
        await file.close();
        reply.header('content-type', OCTET_STREAM);
        if (size !== null) reply.header('content-length', String(size)).header('accept-ranges', 'bytes');
        return reply.code(200).send();
      },
    }),

    domainRoute({
      operationId: 'getFile',
      method: 'GET',
      path: '/files/*',
      // HEAD has its own route: Fastify's automatic one would read the whole file.
      exposeHeadRoute: false,
      permission: 'files:read',
      tags: ['files'],
      summary: 'Download a guest file (streamed; Range supported)',
      description:
        'Agent commands: guest-file-open (mode r), guest-file-seek (size, and the start of a Range), ' +
        `guest-file-read (chunks of files.chunkBytes, ${cfg.chunkBytes} bytes here), guest-file-close. ` +
        'Streams as it reads: the next read is queued while one runs, and reads pause while the client does not keep up. ' +
        'One byte range (bytes=a-b, a-, -n) answers 206; several are ignored (200, whole file). ' +
        'HEAD on the same path answers the size (Content-Length) without reading the file.',
      params: pathParams,
      headers: rangeHeader,
      response: {
        200: binaryBody('The file', ['Content-Length', 'Accept-Ranges']),
        206: binaryBody('The requested range; Content-Range says which', ['Content-Length', 'Accept-Ranges', 'Content-Range']),
      },
      problems: [403, 416, 501],
      check: (request) => allowedPath(request, 'read'),
      handler: async (request, reply, path) => {
        const { file, size } = await openForRead(request, path);
        let start = 0;
        let length: number | null = size;
        try {
          const range = size === null ? ({ kind: 'none' } as const) : parseRange(request.headers.range, size);
          if (range.kind === 'unsatisfiable') {
            reply.header('content-range', `bytes */${size}`);
            throw new GatewayError('range_not_satisfiable', `the range '${request.headers.range}' is outside the file's ${size} bytes`, {
              domain: file.dom.name,
            });
          }
          if (range.kind === 'range') {
            start = range.start;
            length = range.end - range.start + 1;
            reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`);
          }
          // size() left the position at the end (or at 0 when it could not tell).
          if (size !== null) await file.seek(start, 'set');
        } catch (err) {
          await file.close();
          throw err;
        }
        reply.header('content-type', OCTET_STREAM);
        if (size !== null) reply.header('accept-ranges', 'bytes');
        if (length !== null) reply.header('content-length', String(length));
        request.log.debug({ path: file.path, handle: file.handle, start, length }, 'download');
        // A stream, not the string the OpenAPI schema describes: Fastify pipes it and skips serialisation.
        return reply.send(new GuestFileReadStream(file, { start, length }, cfg.chunkBytes) as never);
      },
    }),

    domainRoute({
      operationId: 'putFile',
      method: 'PUT',
      path: '/files/*',
      streamBody: true,
      bodyLimit: Math.min(cfg.maxUploadBytes, Number.MAX_SAFE_INTEGER),
      permission: 'files:write',
      tags: ['files'],
      summary: 'Upload a guest file (streamed; replaced whole or not at all)',
      description:
        'Agent commands: guest-file-open, guest-file-seek (offset), guest-file-write (at most 128 KiB each, ' +
        'the writeChunkBytes setting: qemu-ga misparses larger commands), guest-file-flush, guest-file-close. ' +
        "Replacing also runs guest-get-osinfo (once per domain) and the gateway's own rename program through guest-exec and " +
        'guest-exec-status (that program only: this route runs nothing else). ' +
        'Replacing (the default mode) is atomic: the body goes into a temporary file beside the target ' +
        '(.NAME.qga-gateway-RANDOM.tmp), which is renamed over the target in one step once it is complete, ' +
        'flushed and closed (a fixed program run with guest-exec: sh -c with the paths as arguments, ' +
        "giving it the old file's owner and mode and syncing it first; PowerShell File.Replace on Windows). " +
        'Any failure before that (client gone, deadline, 413, agent error, gateway shutdown) ' +
        'removes the temporary file and leaves the target as it was. A target that is a symbolic link or a directory is refused ' +
        "(409). An agent that cannot run guest-exec (disabled, as in RHEL's default qemu-ga configuration) " +
        'gets 501 atomic_replace_unavailable unless atomic=false asks for the old in-place write. ' +
        'mode=append and offset write in place: an interrupted one leaves the bytes written so far (bytesWritten in the problem, ' +
        'the request log and the audit line). ' +
        `The body is streamed, never held whole; larger than files.maxUploadBytes (${cfg.maxUploadBytes} here): 413, ` +
        'before anything is opened when Content-Length says so.',
      consumes: [OCTET_STREAM],
      params: pathParams,
      querystring: uploadQuery,
      body: z.unknown().meta({ description: 'The bytes of the file', type: 'string', contentMediaType: OCTET_STREAM }),
      response: { 200: { description: 'The file written', schema: fileWrittenSchema } },
      problems: [403, 413, 501],
      check: (request, reply) => {
        const path = allowedPath(request, 'write');
        const { offset } = request.query;
        if (offset !== undefined && request.query.mode === 'append')
          throw new GatewayError('invalid_request', 'offset and mode=append exclude each other');
        const mode = offset !== undefined ? 'offset' : (request.query.mode ?? 'truncate');
        if (mode !== 'truncate' && request.query.atomic === 'true')
          throw new GatewayError(
            'invalid_request',
            `atomic=true is for replacing a whole file; ${mode === 'append' ? 'mode=append' : 'offset'} writes in place`,
          );
        const atomic = mode === 'truncate' && request.query.atomic !== 'false';
        const declared = request.headers['content-length'] === undefined ? null : Number(request.headers['content-length']);
        if (declared !== null && declared > cfg.maxUploadBytes) {
          // Refused before anything is opened; the connection closes so the unread body does not linger.
          reply.header('connection', 'close');
          throw new GatewayError(
            'payload_too_large',
            `the body of ${declared} bytes is larger than the upload limit of ${cfg.maxUploadBytes} bytes; nothing was written`,
          );
        }
        return { path, mode, offset, atomic } as const;
      },
      answer: async (request, reply, { path, mode, offset, atomic }) => {
        const dom = request.domain;
        const progress: UploadProgress = { bytesWritten: 0, temp: null, leftBehind: null };
        const body = (request.body ?? []) as AsyncIterable<Buffer>;
        try {
          const result = await uploads.upload(dom, path, { mode, offset, atomic }, body, onceEach(request.agentOpts), progress);
          request.guestEffect = { bytesWritten: result.bytesWritten, atomic };
          request.log.debug({ path, bytesWritten: result.bytesWritten, atomic }, 'upload');
          return {
            path,
            mode,
            offset: offset ?? null,
            bytesWritten: result.bytesWritten,
            atomic,
            created: result.kept?.created ?? null,
            keptOwner: result.kept && !result.kept.created ? result.kept.owner : null,
            keptMode: result.kept && !result.kept.created ? result.kept.mode : null,
          };
        } catch (err) {
          // What a failed upload left: nothing (atomic: the temporary file removed), or the bytes written in place.
          request.guestEffect = {
            atomic,
            bytesWritten: progress.bytesWritten,
            ...(progress.leftBehind ? { leftBehind: progress.leftBehind } : {}),
          };
          if (!atomic && progress.bytesWritten > 0)
            request.log.warn(
              { path, mode, bytesWritten: progress.bytesWritten },
              'in-place upload stopped part way: the bytes written so far stay in the file',
            );
          if (err instanceof GatewayError && err.code === 'payload_too_large') reply.header('connection', 'close');
          // The body stream fails with 'aborted' when the client leaves mid-upload: not a gateway fault.
          const failure =
            !(err instanceof GatewayError) && (request.clientGone.aborted || request.raw.errored)
              ? new GatewayError('client_gone', 'the client went away before the whole body arrived', { domain: dom.name })
              : err;
          throw failure instanceof GatewayError ? withUploadOutcome(failure, path, atomic, progress) : failure;
        }
      },
    }),
  ];
}

/** A failed upload's problem says what it left behind in the guest. */
function withUploadOutcome(err: GatewayError, path: string, atomic: boolean, progress: UploadProgress): GatewayError {
  const left = progress.leftBehind
    ? `; ${path} is unchanged, but the temporary file ${progress.leftBehind} could not be removed`
    : atomic
      ? progress.temp
        ? `; ${path} is unchanged`
        : ''
      : progress.bytesWritten > 0
        ? `; written in place: the first ${progress.bytesWritten} bytes of the upload are in ${path}`
        : '';
  return new GatewayError(err.code, err.message + left, {
    ...err.extras,
    bytesWritten: progress.bytesWritten,
    ...(progress.leftBehind ? { leftBehind: progress.leftBehind } : {}),
  });
}
