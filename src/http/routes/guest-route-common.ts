// What the guest facts and settings routes share: the example domain of their documentation, the domain
// reference at the top of each answer, and their error answers.
import type { DomainRef } from '../../libvirt/client.js';
import { agentRouteErrors } from '../agent-route.js';
import { problemResponses } from '../problem.js';

export const EXAMPLE_DOMAIN = { name: 'guest1', uuid: '3b5a8f0e-1c2d-4e6f-8a9b-0c1d2e3f4a01' };

export const domainRef = (dom: DomainRef) => ({ name: dom.name, uuid: dom.uuid });

/** The agent routes' errors, plus 501: an agent may lack or disable any of these commands. */
export const guestRouteErrors = (...statuses: number[]) => ({ ...agentRouteErrors(), ...problemResponses(501, ...statuses) });
