// The client's streamed answers (a log or exec byte stream, a watch's NDJSON
// events) and the error for answers that never came: apart from client.ts so
// that file keeps to the requests.
import type { WatchEvent } from "./schemas";

export type ClientErrorCode = "Unreachable" | "Timeout" | "BadResponse";

/** The request never got an API answer: connection refused, DNS, timeout, or a non-API response. */
export class ClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ClientError";
  }
}

/** An open watch: iterate the events; close() ends the iteration and the connection. */
export interface WatchStream<T> extends AsyncIterable<WatchEvent<T>> {
  close(): void;
}

/** A streamed response body: iterate the chunks; close() ends it. */
export class ByteStream implements AsyncIterable<Uint8Array> {
  private closed = false;

  /** `broke`: what a broken stream's error says before the cause. */
  constructor(
    private readonly body: ReadableStream<Uint8Array>,
    private readonly controller: AbortController,
    private readonly url: string,
    private readonly broke = `the stream ${url} broke (the control plane or the node's agent went away)`,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.controller.abort();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const reader = this.body.getReader();
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (this.closed) return;
          throw new ClientError("Unreachable", `${this.broke}: ${(err as Error).message}`, this.url, { cause: err });
        }
        if (chunk.done) return;
        yield chunk.value;
      }
    } finally {
      this.close();
      try {
        reader.releaseLock();
      } catch {
        // a read may still be settling after the abort; the stream is cancelled either way
      }
    }
  }
}

/** Newline-delimited JSON WatchEvents read from a response body. */
export class NdjsonWatch<T> implements WatchStream<T> {
  private readonly bytes: ByteStream;
  private stopped = false;

  constructor(
    body: ReadableStream<Uint8Array>,
    controller: AbortController,
    private readonly url: string,
  ) {
    this.bytes = new ByteStream(body, controller, url, `watch ${url} broke`);
  }

  close(): void {
    this.stopped = true;
    this.bytes.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent<T>> {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of this.bytes) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim() === "") continue; // keep-alive
        yield this.parse(line);
        if (this.stopped) return;
      }
    }
    if (this.stopped) return;
    buffered += decoder.decode();
    if (buffered.trim() !== "") yield this.parse(buffered);
  }

  private parse(line: string): WatchEvent<T> {
    try {
      return JSON.parse(line) as WatchEvent<T>;
    } catch {
      throw new ClientError(
        "BadResponse",
        `watch ${this.url} sent a line that is not JSON: ${line.slice(0, 200)}`,
        this.url,
      );
    }
  }
}
