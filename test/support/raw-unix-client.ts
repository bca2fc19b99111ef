// A bare client of an agent's unix socket, for tests that take the agent's one slot or talk to it byte by byte.
import net from 'node:net';

export function connectRaw(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Half-close and read to the end: the agent sees EOF, never a reset (qemu-ga 7.2 in unix-listen mode exits on one). */
export function leaveCleanly(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    s.once('close', () => resolve());
    s.resume();
    s.end();
  });
}
