// Programs in the guest: POST /domains/{domain}/exec starts one (guest-exec), GET /domains/{domain}/exec/{pid}
// answers its status (guest-exec-status), both optionally waiting for it to exit. Finished results stay
// readable for a while after the agent has reaped the process (exec.resultCacheTtlMs).
import { z } from 'zod';
import { MAX_COMMAND_JSON_BYTES } from '../../agent/core/command-limits.js';
import type { ExecStatus } from '../../agent/exec/exec-service.js';
import { requireIdentity } from '../../auth/identity.js';
import { checkExec, checkExecEnv } from '../../auth/policies.js';
import { GatewayError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import { domainRoute, type DomainRoute } from '../domain-scope.js';
import { domainRefSchema, EXAMPLE_DOMAIN } from '../schemas.js';

const outputSchema = z
  .object({
    encoding: z.enum(['text', 'base64']).describe("'text' when the bytes are valid UTF-8, else 'base64'"),
    data: z.string(),
    bytes: z.number().int().describe('Length of the output in bytes'),
    truncated: z.boolean().describe('The agent kept only the first 16 MiB of the stream'),
  })
  .meta({ id: 'ExecOutput' });

const execStatusSchema = z
  .object({
    domain: domainRefSchema,
    pid: z.number().int(),
    exited: z.boolean().describe('Whether the gateway has seen the process exit; false right after a start without wait'),
    exitCode: z.number().int().nullable().describe('The exit status, when it exited normally'),
    signal: z.number().int().nullable().describe('The signal that ended it, if one did'),
    stdout: outputSchema
      .nullable()
      .describe('null until it exited, when output was not captured, or when the stream was empty (qemu-ga then sends none)'),
    stderr: outputSchema.nullable().describe('As stdout'),
  })
  .meta({
    id: 'ExecStatus',
    example: {
      domain: EXAMPLE_DOMAIN,
      pid: 812,
      exited: true,
      exitCode: 3,
      signal: null,
      stdout: { encoding: 'text', data: 'out\n', bytes: 4, truncated: false },
      stderr: { encoding: 'text', data: 'err\n', bytes: 4, truncated: false },
    },
  });

const envName = /^[^=\0]+$/;

function execStartBody(maxWaitMs: number) {
  return z
    .object({
      path: z.string().min(1).max(4096).describe('The program, as an absolute path or a name the agent finds in its PATH'),
      args: z.array(z.string()).max(4096).default([]).describe('Arguments, without the program name'),
      env: z
        .record(z.string().regex(envName, 'an environment variable name has no "=" or NUL'), z.string())
        .default({})
        .describe(
          "Environment variables. Note: qemu-ga then runs the program with ONLY these (not the agent's own environment). " +
            'Under an exec policy only the names its env list allows, and never a loader or interpreter variable (LD_*, DYLD_*, ' +
            'PATH, BASH_ENV, PYTHON*...): else 403',
        ),
      input: z
        .union([z.strictObject({ text: z.string() }), z.strictObject({ base64: z.base64() })])
        .optional()
        .describe('stdin for the program: UTF-8 text or base64 bytes'),
      captureOutput: z
        .boolean()
        .default(true)
        .describe('Capture stdout and stderr (keep them below about 3 MiB together: see the description)'),
      wait: z
        .strictObject({ timeoutMs: z.number().int().min(1).max(maxWaitMs) })
        .optional()
        .describe(`Wait up to timeoutMs (at most ${maxWaitMs}) for the process to exit and answer its result`),
    })
    .meta({
      id: 'ExecStart',
      example: {
        path: '/bin/sh',
        args: ['-c', 'echo out; echo err >&2; exit 3'],
        env: { LANG: 'C' },
        captureOutput: true,
        wait: { timeoutMs: 10000 },
      },
    });
}

const OUTPUT_NOTE =
  'Captured output comes back in full (up to 16 MiB a stream, base64 inside the agent reply) ' +
  'in the one guest-exec-status reply that says the process exited: ' +
  "over about 3 MiB of output in all that reply fails libvirt's 4 MiB message cap and the output is lost; " +
  "over about 7.5 MiB it breaks the domain's agent channel until the agent reconnects. " +
  'The gateway cannot see the size beforehand: redirect large output to a file in the guest and read it with the file resources.';

export function execRoutes({ config, exec }: Gateway): DomainRoute[] {
  const { maxWaitMs, maxInputBytes } = config.exec;
  const inputNote =
    `stdin up to ${maxInputBytes} bytes (exec.maxInputBytes), and the whole guest-exec command up to ${MAX_COMMAND_JSON_BYTES} ` +
    'bytes of JSON (qemu-ga 7.2 misreads larger commands): past either, 413.';

  return [
    domainRoute({
      operationId: 'startExec',
      method: 'POST',
      path: '/exec',
      permission: 'exec',
      tags: ['exec'],
      summary: 'Start a program in the guest',
      description:
        'Agent command: guest-exec (then guest-exec-status while waiting). Answers 201 with the pid and a Location to poll; ' +
        'with wait, the final result once it exited (or the still-running status at the bound). A missing program: ' +
        `404 file_not_found with the agent's message; not executable: 403. Input: ${inputNote} ${OUTPUT_NOTE}`,
      body: execStartBody(maxWaitMs),
      response: { 201: { description: 'The process started: its pid, and its status when waited for', schema: execStatusSchema } },
      problems: [403, 413, 501],
      check: (request) => {
        const identity = requireIdentity(request.identity);
        const env = Object.entries(request.body.env).map(([k, v]) => `${k}=${v}`);
        checkExec(identity, request.body.path);
        checkExecEnv(identity, env);
        return { identity, env };
      },
      answer: async (request, reply, { identity, env }) => {
        const { domain: dom, agentOpts: opts, body } = request;
        const input = body.input
          ? 'text' in body.input
            ? Buffer.from(body.input.text, 'utf8')
            : Buffer.from(body.input.base64, 'base64')
          : undefined;
        const pid = await exec.start(
          dom,
          { path: body.path, args: body.args, env, input, captureOutput: body.captureOutput },
          opts,
          identity.name,
        );
        request.log.info({ pid, path: body.path, argCount: body.args.length }, 'guest process started');
        const status: ExecStatus = body.wait
          ? await exec.wait(dom, pid, body.wait.timeoutMs, opts)
          : { pid, exited: false, exitCode: null, signal: null, stdout: null, stderr: null };
        reply.code(201).header('location', `/domains/${encodeURIComponent(request.params.domain)}/exec/${pid}`);
        return status;
      },
    }),

    domainRoute({
      operationId: 'getExecStatus',
      method: 'GET',
      path: '/exec/:pid',
      permission: 'exec',
      tags: ['exec'],
      summary: "A guest process's status and output",
      description:
        'Agent command: guest-exec-status (repeated while waiting). The agent forgets a process once it has reported it exited; ' +
        'the gateway keeps that result for exec.resultCacheTtlMs, so asking again works. Unknown pid: 404 process_not_found. ' +
        "A process's status is visible only to the identity that started it (through this route or a raw guest-exec) " +
        `and to identities with scope admin: any other pid answers 404 process_not_found, without asking the agent. ${OUTPUT_NOTE}`,
      params: z.object({
        pid: z.coerce
          .number()
          .int()
          .min(0)
          .max(2 ** 31 - 1)
          .describe('The pid POST /domains/{domain}/exec answered'),
      }),
      querystring: z.object({
        waitMs: z.coerce
          .number()
          .int()
          .min(1)
          .max(maxWaitMs)
          .optional()
          .describe(`Wait up to this long (at most ${maxWaitMs} ms) for the process to exit`),
      }),
      response: { 200: { description: "The process's status, and its output once it has exited", schema: execStatusSchema } },
      problems: [501],
      answer: async (request) => {
        const identity = requireIdentity(request.identity);
        const { domain: dom, agentOpts: opts } = request;
        const { pid } = request.params;
        // Another identity's process answers as one that does not exist: no probing of others' pids. An
        // identity with 'admin' sees every process, those started outside the gateway or before it restarted too.
        if (!identity.scopes.has('admin') && exec.ownerOf(dom, pid) !== identity.name) {
          throw new GatewayError(
            'process_not_found',
            `no process ${pid} started by identity '${identity.name}' is known in this domain (a process's status is visible ` +
              "only to the identity that started it, and to 'admin')",
            { domain: dom.name },
          );
        }
        const { waitMs } = request.query;
        return waitMs ? await exec.wait(dom, pid, waitMs, opts) : await exec.status(dom, pid, opts);
      },
    }),
  ];
}
