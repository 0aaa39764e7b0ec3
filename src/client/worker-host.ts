/**
 * The embedding worker's lifetime, for M3Client: start one (comlink over workers/embed.worker.ts, or the
 * app's factory), notice when it dies (an error event, a message that cannot be read, or a heartbeat
 * ping left unanswered), and kill it. Each worker belongs to one generation; `onDead` names the
 * generation it was started for, so the client ignores news about workers it has already replaced.
 */
import * as Comlink from 'comlink';
import type { EmbedService } from '../engine/service.ts';
import { Heartbeat } from './heartbeat.ts';

export type Remote = Comlink.Remote<EmbedService>;

const DEFAULT_HEARTBEAT = { intervalMs: 1000, timeoutMs: 30_000 };

export class WorkerHost {
  private worker: Worker | null = null;
  private heartbeat: Heartbeat | null = null;
  remote: Remote | null = null;

  constructor(
    private readonly factory: (() => Worker) | undefined,
    private readonly heartbeatOpts: { intervalMs: number; timeoutMs: number } = DEFAULT_HEARTBEAT,
  ) {}

  /** Kills the current worker (if any) and starts a new one; `onDead(reason)` fires when the new one dies. */
  spawn(onDead: (reason: string) => void): Remote {
    this.kill();
    const worker = this.factory ? this.factory() : new Worker(new URL('../../workers/embed.worker.ts', import.meta.url), { type: 'module' });
    this.worker = worker;
    worker.addEventListener('error', (ev) => {
      ev.preventDefault?.();
      onDead(`worker error: ${(ev as ErrorEvent).message ?? 'unknown'}`);
    });
    worker.addEventListener('messageerror', () => onDead('worker messageerror'));
    this.remote = Comlink.wrap<EmbedService>(worker);
    return this.remote;
  }

  /** Pings the ready worker every intervalMs; one unanswered for timeoutMs means it is dead. */
  watch(onDead: (reason: string) => void): void {
    this.heartbeat?.stop();
    const remote = this.remote!;
    this.heartbeat = new Heartbeat(this.heartbeatOpts, () => remote.ping(), onDead);
  }

  /** Whether the worker answers within `ms` and still has a model loaded (after a call failed). */
  async healthy(ms = 5000): Promise<boolean> {
    const remote = this.remote;
    if (!remote) return false;
    try {
      const p = await Promise.race([remote.ping(), new Promise<null>((res) => setTimeout(() => res(null), ms))]);
      return !!p && p.loaded;
    } catch {
      return false;
    }
  }

  kill(): void {
    this.heartbeat?.stop();
    this.heartbeat = null;
    this.worker?.terminate();
    this.worker = null;
    this.remote = null;
  }

  /** Test hook: terminates the worker without telling anyone (the heartbeat finds out). */
  terminateSilently(): void {
    this.worker?.terminate();
  }
}
