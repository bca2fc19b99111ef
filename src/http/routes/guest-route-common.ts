// What the guest facts and settings routes share: the example domain of their documentation, the domain
// reference at the top of each answer, and their error answers.
import { agentRouteErrors } from '../agent-route.js';
import { problemResponses } from '../problem.js';

export { EXAMPLE_DOMAIN, domainRef } from '../schemas.js';

/** The agent routes' errors, plus 501: an agent may lack or disable any of these commands. */
export const guestRouteErrors = (...statuses: number[]) => ({ ...agentRouteErrors(), ...problemResponses(501, ...statuses) });
