// ?project= and ?novaName= on GET /domains and GET /addresses: only the domains whose Nova metadata
// (src/domains/nova-metadata.ts) names one of these projects and whose Nova display name matches one of these names
// or globs. A domain without Nova metadata matches no such filter. Values are checked as /events checks its filter:
// a control character or an over-long value is a 400, never a filter that quietly matches nothing. Globs are matched
// without a regular expression (glob.ts: globMatches), so no pattern can make a request take long.
import { NOVA_ID_MAX, NOVA_NAME_MAX, type NovaInstance } from '../domains/nova-metadata.js';
import { globMatches } from '../glob.js';
import { listParam } from './schemas.js';

const MAX_VALUES = 1000;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function values(max: number) {
  return listParam.superRefine((tokens, ctx) => {
    if (!tokens) return;
    if (tokens.length > MAX_VALUES) ctx.addIssue({ code: 'custom', message: `at most ${MAX_VALUES} values` });
    for (const t of tokens) {
      // The value itself is not echoed: it may hold the very characters that make it wrong.
      if (CONTROL.test(t)) ctx.addIssue({ code: 'custom', message: 'a value must not contain control characters' });
      else if (t.length > max) ctx.addIssue({ code: 'custom', message: `'${t.slice(0, 64)}…' is longer than ${max} characters` });
    }
  });
}

/** The query parameters, for the routes' querystring schemas. */
export const novaFilterQuery = {
  project: values(NOVA_ID_MAX).describe(
    'Only domains whose Nova metadata names one of these Keystone project ids (exactly): repeat the parameter or separate ' +
      'with commas. A domain without Nova metadata never matches',
  ),
  novaName: values(NOVA_NAME_MAX).describe(
    "Only domains whose Nova display name (nova.instanceName) is one of these names or globs ('*' any run of characters, " +
      "'?' one character; case-sensitive): repeat the parameter or separate with commas (a name holding a comma, or " +
      "spaces at its ends, is matched with '?' or '*'). A domain without Nova metadata never matches",
  ),
};

export type NovaPredicate = (nova: NovaInstance | null | undefined) => boolean;

/** The filter of a request's ?project= and ?novaName=, both applying when both are given; null when neither is. */
export function novaFilter(query: { project: string[] | null; novaName: string[] | null }): NovaPredicate | null {
  const { project, novaName } = query;
  if (!project && !novaName) return null;
  const projects = project ? new Set(project) : null;
  return (nova) =>
    !!nova && (!projects || projects.has(nova.project.id)) && (!novaName || novaName.some((glob) => globMatches(glob, nova.instanceName)));
}
