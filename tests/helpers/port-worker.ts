import * as Comlink from 'comlink';

/**
 * A Worker look-alike for Node tests: `service` is exposed with comlink on one end of a MessageChannel,
 * M3Client talks to the other end as it would to a dedicated worker; terminate() closes both ends (the
 * client's heartbeat then finds the worker dead, as after a real terminate()).
 */
export function portWorker(service: object): { worker: Worker; terminated: () => boolean } {
  const { port1, port2 } = new MessageChannel();
  Comlink.expose(service, port2 as unknown as Comlink.Endpoint);
  let dead = false;
  const worker = {
    postMessage: (m: unknown, t?: Transferable[]) => !dead && port1.postMessage(m, t as never),
    addEventListener: (type: string, fn: (e: unknown) => void) => type === 'message' && port1.addEventListener('message', fn as never),
    removeEventListener: (type: string, fn: (e: unknown) => void) => type === 'message' && port1.removeEventListener('message', fn as never),
    start: () => port1.start(),
    terminate: () => {
      dead = true;
      port1.close();
      port2.close();
    },
  } as unknown as Worker;
  return { worker, terminated: () => dead };
}
