// What the gateway sends the agent as a guest user name, a password and an SSH key line: the same rules whether the
// accounts routes send them or a raw caller does (raw/raw-command.ts), so that the raw endpoint is no way around them.
import { z } from 'zod';
import { sshKeyProblem } from './ssh-keys.js';

export const guestUserName = z
  .string()
  .min(1)
  .max(256)
  // Neither Linux nor Windows account names hold these; "/" would also escape the home directory lookup.
  .regex(/^[^\u0000-\u001f\u007f/:\\]+$/, 'must not contain control characters, "/", "\\" or ":"')
  .describe('The guest user name');

/** qemu-ga hands the password to chpasswd as one "user:password" line: a line break would start another. */
export const PASSWORD_LINE = /^[^\r\n\0]*$/;
export const PASSWORD_LINE_MESSAGE = 'must not contain CR, LF or NUL';

/** One OpenSSH public key line, checked (sshKeyProblem) but not trimmed. */
export const sshKeyLineChecked = z
  .string()
  .max(16 * 1024)
  .superRefine((line, ctx) => {
    const problem = sshKeyProblem(line);
    if (problem) ctx.addIssue({ code: 'custom', message: `not an OpenSSH public key: ${problem}` });
  });
