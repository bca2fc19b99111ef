// The simplest route about a domain: a GET that sends one agent query (no arguments) and reshapes its reply. Its
// description is made from the command it sends, so the document names what runs.
import type { z } from 'zod';
import type { AgentCommand } from '../agent/commands/define.js';
import type { AgentService } from '../agent/core/service.js';
import type { AnswerFields, DomainRoute } from './domain-scope.js';
import type { Permission } from './permissions.js';

export interface AgentQuerySpec<T, R extends z.ZodType> {
  /** The operation's stable name (domain-scope.ts). */
  operationId: string;
  path: string;
  permission: Permission;
  tags: string[];
  /** Names what the answer is, too: its response's description. */
  summary: string;
  command: AgentCommand<undefined, T>;
  /** Which agents have the command, in parentheses after its name: 'qemu-ga 7.1+, Linux guests'. */
  requires?: string;
  /** What the description says after naming the command. */
  details?: string;
  response: R;
  /** Problem statuses beyond every agent route's (501 when agents may lack or disable the command). */
  problems?: number[];
  reshape: (reply: T) => AnswerFields<z.output<R>>;
}

export function agentQuery<T, R extends z.ZodType>(agent: AgentService, spec: AgentQuerySpec<T, R>): DomainRoute {
  const { command, requires, details, response, reshape, ...rest } = spec;
  // Declared directly: this function's own signature has typed the reply and the answer.
  return {
    ...rest,
    method: 'GET',
    etag: true,
    description: `Agent command: ${command.execute}${requires ? ` (${requires})` : ''}.${details ? ` ${details}` : ''}`,
    response: { 200: { description: spec.summary, schema: response } },
    answer: async (request) => reshape(await agent.execute(request.domain, command, undefined, request.agentOpts)) as object,
  };
}
