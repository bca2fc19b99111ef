// Guest accounts: a user's password (guest-set-user-password) and SSH authorized keys
// (guest-ssh-get/add/remove-authorized-keys). The password never reaches a log: it travels base64-encoded
// in the agent command only, and error messages never carry it.
import { GatewayError } from '../../errors.js';
import { isAgentError } from '../core/agent-errors.js';
import {
  guestSetUserPassword,
  guestSshAddAuthorizedKeys,
  guestSshGetAuthorizedKeys,
  guestSshRemoveAuthorizedKeys,
} from '../commands/accounts.js';
import type { AgentCallOptions, AgentService } from '../core/service.js';
import { describeKeyLine, type AuthorizedKey } from './ssh-keys.js';
import type { DomainRef } from '../../domains/vocabulary.js';

/** The agent's answers that mean something precise (agent-errors.ts has each version's wording). */
function mapAccountError(err: unknown, dom: DomainRef, user: string): unknown {
  if (!(err instanceof GatewayError) || err.code !== 'agent_error') return err;
  const desc = err.extras.agentDesc ?? '';
  const extras = { ...err.extras, domain: dom.name };
  if (isAgentError(err, 'userNotFound')) return new GatewayError('user_not_found', `the guest has no user ${JSON.stringify(user)}`, extras);
  // Linux qemu-ga runs chpasswd for guest-set-user-password; 7.2's message names "passwd" whatever it looked for.
  if (isAgentError(err, 'passwordProgramMissing')) {
    return new GatewayError(
      'guest_program_missing',
      `the guest agent cannot set passwords in this guest: ${desc} (it runs chpasswd)`,
      extras,
    );
  }
  return err;
}

export class AccountService {
  constructor(private readonly agent: AgentService) {}

  async setPassword(dom: DomainRef, user: string, password: string, crypted: boolean, opts: AgentCallOptions): Promise<void> {
    const encoded = Buffer.from(password, 'utf8').toString('base64');
    try {
      await this.agent.execute(dom, guestSetUserPassword, { username: user, password: encoded, crypted }, opts);
    } catch (err) {
      const mapped = mapAccountError(err, dom, user);
      if (isAgentError(mapped, 'passwordChangeFailed') && (await this.userMissing(dom, user, opts))) {
        throw new GatewayError('user_not_found', `the guest has no user ${JSON.stringify(user)}`, { ...mapped.extras, domain: dom.name });
      }
      throw mapped;
    }
  }

  /**
   * Whether the guest lacks the user, asked the one way the agent looks a user up (getpwnam in
   * guest-ssh-get-authorized-keys). Linux qemu-ga runs chpasswd without looking the user up, and chpasswd's
   * failure for an unknown user is worded like any other PAM failure; false when the agent cannot tell.
   */
  private async userMissing(dom: DomainRef, user: string, opts: AgentCallOptions): Promise<boolean> {
    try {
      await this.agent.execute(dom, guestSshGetAuthorizedKeys, { username: user }, opts);
      return false;
    } catch (err) {
      return isAgentError(err, 'userNotFound');
    }
  }

  /** The user's keys; none when the user has no authorized_keys file yet. */
  async getKeys(dom: DomainRef, user: string, opts: AgentCallOptions): Promise<AuthorizedKey[]> {
    try {
      const { keys } = await this.agent.execute(dom, guestSshGetAuthorizedKeys, { username: user }, opts);
      return keys.map(describeKeyLine);
    } catch (err) {
      if (isAgentError(err, 'noAuthorizedKeysFile')) return [];
      throw mapAccountError(err, dom, user);
    }
  }

  async addKeys(dom: DomainRef, user: string, keys: string[], reset: boolean, opts: AgentCallOptions): Promise<void> {
    try {
      await this.agent.execute(dom, guestSshAddAuthorizedKeys, { username: user, keys, ...(reset ? { reset } : {}) }, opts);
    } catch (err) {
      throw mapAccountError(err, dom, user);
    }
  }

  async removeKeys(dom: DomainRef, user: string, keys: string[], opts: AgentCallOptions): Promise<void> {
    try {
      await this.agent.execute(dom, guestSshRemoveAuthorizedKeys, { username: user, keys }, opts);
    } catch (err) {
      throw mapAccountError(err, dom, user);
    }
  }
}
