// One gateway per state.dir: two would each take the other's records for a dead run's (removing live uploads'
// temporary files, thawing freezes they do not hold). The lock is a pid file: taken over when its pid is this
// process's (a container restarted with the same pid) or no longer alive; refused while another process lives.
// Two containers with separate pid namespaces sharing one host directory cannot see each other's pid: give
// each its own directory (the chart's DaemonSet runs one pod per node, updated with maxUnavailable).
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class StateDirInUse extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`state.dir ${dir} is in use by another gateway (pid ${pid}): give each gateway its own state.dir`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock; answers its release. Throws StateDirInUse when another live process holds it, and the
 * file system's error when the directory cannot be written (the caller carries on without records then).
 */
export function lockStateDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'gateway.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => {
        try {
          if (Number(readFileSync(file, 'utf8')) === process.pid) unlinkSync(file);
        } catch {} // gone already
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) throw new StateDirInUse(dir, holder);
    unlinkSync(file); // stale: its process is gone (killed, crashed), or it is this one's pid from a previous life
  }
  throw new Error(`could not take the lock ${file}`);
}
