// A sleep for the fake servers: its timer sits in the server's set, so that stopping the server cancels it.
export function trackedSleep(timers: Set<NodeJS.Timeout>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      timers.delete(t);
      resolve();
    }, ms);
    timers.add(t);
  });
}
