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

/** Where opening a model stands: the views without a session say so instead of a bare "loading…" forever. */
export interface LoadState {
  state: 'loading' | 'ready' | 'error';
  /** What the model panel says (the phase, its progress). */
  text: string;
}

interface Events {
  session: Session;
  load: LoadState;
  /** The open session's plan changed without the user asking (m3.ts, Session.open's onReplan). */
  replan: { session: Session; reason: string };
  point: Point;
  measured: Measured;
}

const bus = new EventTarget();

export const state: { session: Session | null; point: Point | null; load: LoadState } = { session: null, point: null, load: { state: 'loading', text: 'starting…' } };

export function on<K extends keyof Events>(type: K, fn: (detail: Events[K]) => void): void {
  bus.addEventListener(type, (e) => fn((e as CustomEvent<Events[K]>).detail));
}

export function emit<K extends keyof Events>(type: K, detail: Events[K]): void {
  if (type === 'session') state.session = detail as Session;
  if (type === 'point') state.point = detail as Point;
  if (type === 'load') state.load = detail as LoadState;
  bus.dispatchEvent(new CustomEvent(type, { detail }));
}
