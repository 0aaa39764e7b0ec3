/** Model card and device panel: what was loaded, and where and how it runs. */
import { byId, camelWrap, facts, fmtBytes, h, waitingText } from './dom.ts';
import type { Session } from './m3.ts';
import { on, state } from './state.ts';

function card(s: Session): void {
  const i = s.info;
  const p = s.parameters;
  byId('card-body').replaceChildren(
    facts([
      ['source', i.source],
      ['family', i.family],
      ['parameters', `${p >= 1e6 ? `${(p / 1e6).toFixed(1)} M` : `${(p / 1e3).toFixed(1)} k`} (${i.layers} layers × ${i.hidden} hidden × ${i.heads} heads)`],
      ['download size', s.loadedBytes ? fmtBytes(s.loadedBytes) : 'read from the cache'],
      ['weights dtype', i.dtype],
      ['max length', `${i.maxTokens} tokens`],
      ['pooling', `${i.pooling}${i.normalize ? ', L2-normalised' : ''}`],
      ['trained exits', i.mrlLayers?.length ? `layers ${i.mrlLayers.join(', ')} × dims ${i.mrlDims?.join(', ')}` : 'none (any depth and width, quality from the default curve)'],
      ['BGE-M3 heads', i.hasBgeM3Heads ? 'yes: dense, sparse lexical and ColBERT' : 'no: dense only'],
      ['prompts', promptsText(i.prompts, i.defaultPrompt)],
    ]),
  );
  byId('card').dataset.ready = 'true';
}

function device(s: Session): void {
  const a = s.adapter;
  const i = s.info;
  const backend = i.backend;
  const why = s.plan.backendReason ?? i.backendReason ?? (a && !a.ok ? `no WebGPU: ${a.reason}` : 'chosen by the client');
  const rows: [string | HTMLElement, string][] = [['backend', `${backend} (${why})`]];
  // Two groups, side by side where the panel is wide: how the model runs, and the WebGPU adapter it found.
  const gpu: [string | HTMLElement, string][] = [];
  if (a?.ok) {
    const ad = a.adapter;
    gpu.push(
      ['vendor', ad.vendor || '(not reported)'],
      ['architecture', ad.architecture || '(not reported)'],
      ['description', ad.description || '(not reported)'],
      ['fallback adapter', ad.isFallbackAdapter ? 'yes (a CPU implementation: slow, exact)' : 'no'],
      ['shader-f16', ad.shaderF16 ? 'yes' : 'no (f16 weights run as packed pairs)'],
    );
    for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'] as const) {
      const v = (ad.limits as Record<string, number>)[k];
      if (v !== undefined) gpu.push([camelWrap(k), v.toLocaleString('en')]);
    }
  }
  const c = s.cost;
  const src = s.stats.calibration === 'cache' ? 'from the cache (this device measured before)' : s.stats.calibration === 'measured' ? `measured now (${s.stats.calibrationRuns} runs)` : 'not measured (flops estimate)';
  rows.push(
    ['calibration', src],
    ['cost model', costText(c)],
    ['cross-origin isolated', crossOriginIsolated ? 'yes (wasm may use threads)' : 'no (wasm runs single-threaded)'],
    // Why 1 thread on an isolated page: onnxruntime-web's default is min(4, ⌈cores/2⌉) (src/cpu/ort.ts, chooseThreads).
    ...(i.threads !== undefined ? [['CPU backend threads', `${i.threads}${crossOriginIsolated ? ` (onnxruntime-web's default for ${navigator.hardwareConcurrency} logical cores: min(4, ⌈cores/2⌉))` : ''}`] as [string, string]] : []),
  );
  const group = (title: string, r: typeof rows) => h('div', {}, h('h3', {}, title), facts(r));
  byId('device-body').replaceChildren(h('div', { class: 'facts-groups' }, group('How it runs', rows), gpu.length ? group('WebGPU adapter', gpu) : null));
  byId('device').dataset.ready = 'true';
}

/** The latency model in readable numbers: 3 significant digits, zero terms left out, its variables named. */
function costText(c: Session['cost']): string {
  const n = (x: number) => (Math.abs(x) >= 0.01 ? String(Number(x.toPrecision(3))) : x.toExponential(2));
  const terms = [c.a ? n(c.a) : '', c.b ? `${n(c.b)}·T·l` : '', c.c ? `${n(c.c)}·T²·l` : ''].filter(Boolean);
  return `ms ≈ ${terms.join(' + ') || '0'} for T tokens through l layers (timer: ${c.timer})`;
}

export function initCard(): void {
  on('session', (s) => {
    card(s);
    device(s);
  });
  // The backend, its reason and the cost model can change after the start (a re-plan): the panel follows.
  on('replan', ({ session }) => device(session));
  const waiting = () => {
    if (state.session) return; // the open model stays in use while another loads or fails
    byId('card-body').replaceChildren(h('p', { class: 'muted' }, waitingText(state.load)));
    byId('device-body').replaceChildren(h('p', { class: 'muted' }, waitingText(state.load)));
  };
  on('load', waiting);
  waiting();
}

/** Which prompt the embeddings get: the model's default prompt (prepended to every text unless a call names another), or none. */
function promptsText(prompts: Record<string, string> | undefined, def: string | null | undefined): string {
  const names = Object.keys(prompts ?? {});
  if (!names.length) return 'none (texts are embedded as given)';
  const list = names.map((n) => `${n}: "${prompts![n]}"`).join(', ');
  return def ? `${list}; in use by default: ${def}` : `${list}; none by default (the search view uses query / passage when present)`;
}
