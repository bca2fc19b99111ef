// The guest agent the fake libvirtd answers with unless a test gives its own: a few read-only commands, with
// replies recorded from a real qemu-ga where it matters. The in-memory agent transport (test/support/
// memory-agent-transport.ts) answers with it too.
import { fixtureReply } from '../qga-fixtures.js';
import type { AgentHandler } from './types.js';

const SUPPORTED_AGENT_COMMANDS = [
  'guest-ping',
  'guest-sync',
  'guest-sync-delimited',
  'guest-info',
  'guest-get-host-name',
  'guest-get-osinfo',
  'guest-get-time',
  'guest-get-timezone',
  'guest-network-get-interfaces',
  'guest-exec',
  'guest-exec-status',
  'guest-file-open',
  'guest-file-read',
  'guest-file-write',
  'guest-file-close',
  'guest-shutdown',
];

/**
 * The default agent: guest-ping, guest-sync(-delimited), guest-info (with supported_commands),
 * guest-get-host-name (the domain's name), guest-get-osinfo, guest-get-time, guest-get-timezone and
 * guest-network-get-interfaces (replies recorded from qemu-ga 10.0.13, test/fixtures/qga/10.0).
 * Anything else: CommandNotFound "The command X has not been found", as qemu-ga answers.
 */
export const defaultAgentHandler: AgentHandler = (domain, command) => {
  const args = (command.arguments ?? {}) as Record<string, unknown>;
  switch (command.execute) {
    case 'guest-ping':
      return { return: {} };
    case 'guest-sync':
    case 'guest-sync-delimited':
      return { return: args.id };
    case 'guest-info':
      return {
        return: {
          version: '8.2.2',
          supported_commands: SUPPORTED_AGENT_COMMANDS.map((name) => ({
            name,
            enabled: true,
            'success-response': name !== 'guest-shutdown',
          })),
        },
      };
    case 'guest-get-host-name':
      return { return: { 'host-name': domain.name } };
    // Recorded from Debian 13's qemu-ga 10.0.13 (test/fixtures/qga/10.0/), as libvirt hands them on.
    case 'guest-get-osinfo':
      return fixtureReply('10.0', 'guest-get-osinfo');
    case 'guest-get-time':
      // As qemu-ga sends it (whole microseconds, a JSON number past 2^53), of the host's clock.
      return { raw: `{"return":${BigInt(Date.now()) * 1_000_000n}}` };
    case 'guest-get-timezone':
      return fixtureReply('10.0', 'guest-get-timezone');
    case 'guest-network-get-interfaces':
      return fixtureReply('10.0', 'guest-network-get-interfaces');
    default:
      return { error: { class: 'CommandNotFound', desc: `The command ${command.execute} has not been found` } };
  }
};
