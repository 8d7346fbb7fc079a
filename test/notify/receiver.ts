/**
 * A real HTTP receiver on 127.0.0.1 for the notification tests: records every request (headers and
 * raw body) and answers as told: a status, or never (hang). Closing it ends every connection.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '../../src/platform/wait.ts';

export interface Received {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly method: string;
}

export type Behaviour = { readonly status: number; readonly body?: string } | 'hang';

export class Receiver {
  readonly requests: Received[] = [];
  /** Requests whose connection the client closed (a hung request cut at its timeout). */
  aborted = 0;
  /** What to answer; a function gets the request's index (0 = first). */
  behaviour: Behaviour | ((index: number) => Behaviour);
  url = '';
  private readonly server: http.Server;

  private constructor(behaviour: Behaviour | ((index: number) => Behaviour)) {
    this.behaviour = behaviour;
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => this.answer(request, Buffer.concat(chunks).toString('utf8'), response));
    });
  }

  static async start(behaviour: Behaviour | ((index: number) => Behaviour) = { status: 200 }): Promise<Receiver> {
    const receiver = new Receiver(behaviour);
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.server.address() as AddressInfo;
    receiver.url = `http://127.0.0.1:${port}/hook`;
    return receiver;
  }

  private answer(request: http.IncomingMessage, body: string, response: http.ServerResponse): void {
    const index = this.requests.length;
    this.requests.push({ headers: request.headers, body, method: request.method ?? '' });
    const answer = typeof this.behaviour === 'function' ? this.behaviour(index) : this.behaviour;
    if (answer === 'hang') {
      response.on('close', () => {
        if (!response.writableEnded) this.aborted++;
      });
      return;
    }
    response.writeHead(answer.status, { 'content-type': 'text/plain' });
    response.end(answer.body ?? 'ok');
  }

  /** Waits (real time, bounded) until `count` requests arrived. */
  async until(count: number, what = `${count} requests`): Promise<void> {
    await waitFor(what, () => this.requests.length >= count, { attempts: 3000, intervalMs: 10, timeoutMs: 30_000 });
  }

  bodies(): Record<string, unknown>[] {
    return this.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
