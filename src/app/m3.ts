/**
 * The playground's one door to the library: every M3Client and SemanticIndex call goes through this
 * file, so a change of their signatures is a one-file fix. The views never import src/gpu or
 * src/engine (README, "Architecture"); they see the shapes below.
 */
import { M3Client, type ClientProgress } from '../client/client.ts';
import type { Budget, Candidate, Plan } from '../client/planner.ts';
import { SemanticIndex } from '../search/semantic-index.ts';
import type { Doc, IndexStats, SearchHit, SearchMode, SparseVector, ColbertVectors } from '../search/types.ts';

export type { Budget, Candidate, ClientProgress, IndexStats, Plan, SearchHit, SearchMode };
export type ModelInfo = M3Client['info'];
export type GpuProbe = NonNullable<M3Client['adapter']>;
export type ClientStats = M3Client['stats'];
export type CostModel = M3Client['cost'];
export type Output = 'dense' | 'sparse' | 'colbert';

export interface Embedding {
  /** (n, dims) row-major, L2-normalised. */
  dense: Float32Array;
  n: number;
  layers: number;
  dims: number;
  ms: number;
  batches: number;
  backend: string;
  sparse?: (SparseVector & { tokens?: string[] })[];
  colbert?: ColbertVectors[];
}

export interface EmbedRequest {
  layers: number;
  dims: number;
  outputs?: Output[];
  sparseTokens?: boolean;
  /** A prompt name of the model ('query', 'passage') or literal text. */
  prompt?: string;
  signal?: AbortSignal;
}

export class Session {
  private constructor(
    private readonly m3: M3Client,
    /** What the user picked: a URL or hub id. */
    readonly model: string,
    /** Bytes the load read (network or cache). */
    readonly loadedBytes: number,
  ) {}

  /** True while setBudget runs: its own 'replan' is the caller's answer, not news. */
  private budgeting = false;

  /**
   * Opens `model`. `onReplan` hears the plans the client changes by itself after it is ready (measured latency
   * drifting from the cost model, a device change, a backend measured later), so the views can follow them.
   */
  static async open(model: string, opts: { budget?: Budget; onProgress?: (p: ClientProgress) => void; onReplan?: (plan: Plan, reason: string) => void } = {}): Promise<Session> {
    let bytes = 0;
    let session: Session | null = null;
    const m3 = await M3Client.create({
      model,
      budget: opts.budget,
      onProgress: (p) => {
        if (p.phase === 'loaded') bytes = p.bytes;
        if (p.phase === 'replan' && session && !session.budgeting) opts.onReplan?.(p.plan, p.reason);
        opts.onProgress?.(p);
      },
    });
    session = new Session(m3, model, bytes);
    return session;
  }

  get info(): ModelInfo {
    return this.m3.info;
  }
  get adapter(): GpuProbe | null {
    return this.m3.adapter;
  }
  get plan(): Plan {
    return this.m3.plan;
  }
  get stats(): ClientStats {
    return this.m3.stats;
  }
  get cost(): CostModel {
    return this.m3.cost;
  }
  get budget(): Budget {
    return this.m3.budget;
  }
  /** Parameters from the config's shapes (the planner's weight model, at full depth and 4 bytes a weight). */
  get parameters(): number {
    const s = this.m3.shape;
    const H = s.hidden;
    const embed = (s.vocab + s.maxPositions + s.typeVocab) * H;
    const block = 4 * H * H + 2 * H * s.intermediate + (s.family === 'm3bert' ? H * s.intermediate : 0) + 4 * H + s.intermediate + 4 * H;
    return embed + s.layers * block;
  }

  candidates(): Candidate[] {
    return this.m3.candidates();
  }
  frontier(): Candidate[] {
    return this.m3.frontier();
  }
  /** Re-plans for a budget (throws BudgetError naming the cheapest plan when none fits). */
  setBudget(budget: Budget): Plan {
    this.budgeting = true;
    try {
      return this.m3.setBudget(budget);
    } finally {
      this.budgeting = false;
    }
  }

  async embed(texts: string[], req: EmbedRequest): Promise<Embedding> {
    const { outputs = ['dense'], sparseTokens, ...rest } = req;
    const r = await this.m3.embed(texts, { ...rest, outputs, ...(outputs.includes('sparse') ? { sparseTokens: sparseTokens ?? true } : {}) });
    return { dense: r.embeddings, n: r.n, layers: r.layers, dims: r.dims, ms: r.ms, batches: r.batches, backend: r.backend, sparse: r.sparse, colbert: r.colbert };
  }

  /** An in-page index over this model at (layers, dims), keeping the outputs the model has. */
  async createIndex(opts: { layers: number; dims: number }): Promise<DemoIndex> {
    const outputs: Output[] = this.info.hasBgeM3Heads ? ['dense', 'sparse', 'colbert'] : ['dense'];
    const embedder = { modelId: this.model, embed: (texts: string[], o: { outputs?: Output[]; dims?: number; layers?: number; prompt?: string; signal?: AbortSignal }) => this.embedForIndex(texts, o) };
    // Instruction models (e5 and the like) name their prompts: queries get 'query', documents 'passage' / 'document'.
    const names = Object.keys(this.info.prompts ?? {});
    const docPrompt = ['passage', 'document'].find((n) => names.includes(n));
    const prompts = { ...(names.includes('query') ? { queryPrompt: 'query' } : {}), ...(docPrompt ? { docPrompt } : {}) };
    return new DemoIndex(await SemanticIndex.create({ embedder, layers: opts.layers, dims: opts.dims, outputs, chunkSize: 8, ...prompts }), outputs);
  }

  private async embedForIndex(texts: string[], o: { outputs?: Output[]; dims?: number; layers?: number; prompt?: string; signal?: AbortSignal }) {
    const r = await this.embed(texts, { layers: o.layers ?? this.plan.layers, dims: o.dims ?? this.plan.dims, outputs: o.outputs, sparseTokens: false, signal: o.signal, ...(o.prompt !== undefined ? { prompt: o.prompt } : {}) });
    return { embeddings: r.dense, dims: r.dims, sparse: r.sparse, colbert: r.colbert };
  }

  dispose(): void {
    this.m3.dispose();
  }
}

export class DemoIndex {
  constructor(
    private readonly index: SemanticIndex,
    readonly outputs: Output[],
  ) {}

  async add(docs: { id: string; text: string }[], opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void }): Promise<void> {
    await this.index.add(docs as Doc[], { signal: opts.signal, onProgress: (p) => opts.onProgress?.(p.done, p.total) });
  }

  search(query: string, mode: SearchMode, k: number, signal?: AbortSignal): Promise<SearchHit[]> {
    return this.index.search(query, { mode, k, signal });
  }

  stats(): IndexStats {
    return this.index.stats();
  }
}
