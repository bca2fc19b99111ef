// Server-Sent Events read with fetch() instead of EventSource, which cannot send an Authorization header.
// SseParser follows the HTML standard's event-stream interpretation; follow() keeps a stream open, reconnecting
// with Last-Event-ID.

/** Turns chunks of an event stream's text into events: {id, event, data, retry}. */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.lastEventId = '';
    this.reset();
  }

  reset() {
    this.event = '';
    this.data = [];
    this.hasData = false;
  }

  /** Feeds text (any split, even inside a CR LF pair); returns the events it completes. */
  push(text) {
    this.buffer += text;
    const events = [];
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.buffer);
      if (!m) break;
      // A CR at the very end may be the first half of CR LF: wait for the next chunk.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  line(line) {
    if (line === '') {
      const event = this.hasData ? { id: this.lastEventId, event: this.event || 'message', data: this.data.join('\n') } : null;
      this.reset();
      return event;
    }
    if (line.startsWith(':')) return null; // a comment: the heartbeat
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.hasData = true;
    } else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }
}

/** The server has no such stream (404, 405 or 501): polling instead is the only way. */
export class StreamMissing extends Error {}

/**
 * Reads the event stream at url until signal aborts: onOpen(resumed) on each connection (resumed: Last-Event-ID sent), onEvent({id, event, data}) for
 * each event, onDown(error) when a connection fails or ends; then connects again (after retry ms, or at once
 * after a 'closing' or 'overflow' event), sending Last-Event-ID. headers() gives each connection's headers.
 * Throws StreamMissing when the server has no such stream, and the first error of an unauthorised stream (401, 403).
 */
export async function follow(url, { headers = () => ({}), signal, onOpen = () => {}, onEvent, onDown = () => {}, retryMs = 3000 }) {
  const parser = new SseParser();
  while (!signal.aborted) {
    let wait = retryMs;
    try {
      const h = { accept: 'text/event-stream', ...headers() };
      if (parser.lastEventId) h['last-event-id'] = parser.lastEventId;
      const res = await fetch(url, { headers: h, signal, cache: 'no-store' });
      if ([404, 405, 501].includes(res.status)) throw new StreamMissing(`${url}: ${res.status}`);
      if (res.status === 401 || res.status === 403) throw Object.assign(new Error(`${url}: ${res.status}`), { status: res.status });
      if (!res.ok || !res.body) throw new Error(`${url}: ${res.status}`);
      onOpen(Boolean(h['last-event-id']));
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      parser.buffer = '';
      parser.reset();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(value)) {
          if (event.event === 'closing' || event.event === 'overflow') wait = 0;
          onEvent(event);
        }
      }
      onDown(new Error('the stream ended'));
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof StreamMissing || err.status) throw err;
      onDown(err);
    }
    if (parser.retry !== undefined && wait !== 0) wait = parser.retry;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, wait);
      signal.addEventListener('abort', () => resolve(clearTimeout(timer)), { once: true });
    });
  }
}
