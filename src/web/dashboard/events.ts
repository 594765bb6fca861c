// Server-sent events over fetch(): EventSource cannot send a header, and the dashboard token goes in one
// (Authorization: Bearer T) rather than in a URL, where it would land in histories and logs.

export interface StreamEvent {
  event: string;
  data: string;
}

/** Splits a text/event-stream into events (the fields this server sends: event, data; comments ignored). */
export class EventParser {
  private buffer = '';

  push(chunk: string): StreamEvent[] {
    this.buffer += chunk.replace(/\r\n?/g, '\n');
    const out: StreamEvent[] = [];
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) out.push({ event, data: data.join('\n') });
    }
    return out;
  }
}

export type StreamEnd =
  | { kind: 'ended' }
  | { kind: 'refused'; status: number; message: string }
  | { kind: 'failed'; message: string };

/** Reads `url` as an event stream until it ends; `onOpen` runs once the server accepted the request. */
export async function readEvents(
  url: string,
  token: string | null,
  onOpen: () => void,
  onEvent: (e: StreamEvent) => void,
  signal: AbortSignal,
): Promise<StreamEnd> {
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    return { kind: 'failed', message: (e as Error).message };
  }
  if (!res.ok || !res.body) {
    let message = `HTTP ${res.status}`;
    try {
      const body = (await res.json()) as { error?: unknown };
      if (typeof body.error === 'string') message = body.error;
    } catch {
      // not JSON: the status says enough
    }
    return { kind: 'refused', status: res.status, message };
  }
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new EventParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { kind: 'ended' };
      for (const e of parser.push(value)) onEvent(e);
    }
  } catch (e) {
    return { kind: 'failed', message: (e as Error).message };
  }
}
