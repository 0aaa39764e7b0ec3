/**
 * Shared playground state and its events: the open model session, the (layers, dims) point the user
 * chose, and the last measured latency. Views subscribe; nothing else is global.
 */
import type { Session } from './m3.ts';

export interface Point {
  layers: number;
  dims: number;
}

export interface Measured extends Point {
  ms: number;
  batches: number;
  n: number;
}

interface Events {
  session: Session;
  /** The open session's plan changed without the user asking (m3.ts, Session.open's onReplan). */
  replan: { session: Session; reason: string };
  point: Point;
  measured: Measured;
}

const bus = new EventTarget();

export const state: { session: Session | null; point: Point | null } = { session: null, point: null };

export function on<K extends keyof Events>(type: K, fn: (detail: Events[K]) => void): void {
  bus.addEventListener(type, (e) => fn((e as CustomEvent<Events[K]>).detail));
}

export function emit<K extends keyof Events>(type: K, detail: Events[K]): void {
  if (type === 'session') state.session = detail as Session;
  if (type === 'point') state.point = detail as Point;
  bus.dispatchEvent(new CustomEvent(type, { detail }));
}
