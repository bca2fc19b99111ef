import { describe, expect, it } from 'vitest';
import { mapLibvirtError } from '../../src/domains/backend-errors.js';
import { ERROR_STATUS } from '../../src/errors.js';
import { ConnectionError, LibvirtError } from '../../src/libvirt/errors.js';

const lv = (code: number, message: string) => new LibvirtError({ code, domain: 10, message });

describe('mapLibvirtError', () => {
  // The messages are the ones libvirt 9.0 sends (see shared FACTS.md).
  it.each([
    [42, "Domain not found: no domain with matching name 'x'", 'domain_not_found', 404],
    [55, 'Requested operation is not valid: domain is not running', 'domain_not_running', 409],
    [74, 'argument unsupported: QEMU guest agent is not configured', 'agent_not_configured', 503],
    [86, 'Guest agent is not responding: QEMU guest agent is not connected', 'agent_not_connected', 503],
    [86, 'Guest agent is not responding: Guest agent not available for now', 'agent_unresponsive', 503],
    [
      68,
      'Timed out during operation: cannot acquire state change lock (held by agent=remoteDispatchDomainAgentCommand)',
      'agent_busy',
      503,
    ],
    [112, 'guest agent command timed out', 'deadline_exceeded', 504],
    [9, 'operation failed: something', 'libvirt_error', 502],
  ])('libvirt code %i (%s) becomes %s', (code, message, expected, status) => {
    const e = mapLibvirtError(lv(code, message));
    expect(e.code).toBe(expected);
    expect(ERROR_STATUS[e.code]).toBe(status);
    expect(e.extras.libvirtCode).toBe(code);
  });

  it("recovers the agent's error description and class", () => {
    const e = mapLibvirtError(lv(1, "internal error: unable to execute QEMU agent command 'guest-exec-status': Invalid parameter 'pid'"));
    expect(e.code).toBe('agent_error');
    expect(e.extras.agentDesc).toBe("Invalid parameter 'pid'");
    expect(e.extras.agentClass).toBe('GenericError');
    const nf = mapLibvirtError(
      lv(1, "internal error: unable to execute QEMU agent command 'guest-nope': The command guest-nope has not been found"),
    );
    expect(nf.extras.agentClass).toBe('CommandNotFound');
    const disabled = mapLibvirtError(
      lv(1, "internal error: unable to execute QEMU agent command 'guest-exec': Command guest-exec has been disabled"),
    );
    expect(disabled.extras.agentClass).toBe('CommandNotFound');
  });

  it('treats a lost connection as libvirt_unavailable with Retry-After, and anything else as internal', () => {
    const e = mapLibvirtError(new ConnectionError('connection to libvirtd closed'));
    expect(e.code).toBe('libvirt_unavailable');
    expect(e.extras.retryAfter).toBeGreaterThan(0);
    expect(mapLibvirtError(new TypeError('bug')).code).toBe('internal_error');
  });
});
