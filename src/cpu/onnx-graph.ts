/**
 * A small builder for ONNX models made at run time from loaded weights (the CPU backend's graphs), over
 * onnx-proto's generated ModelProto classes (ONNX 1.10 schema). Weights become f32 initializers in raw
 * little-endian bytes; every graph here is one encoder block or head, far below protobuf's 2 GB limit.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type Attr = number | number[] | string;

export const FLOAT = onnx.TensorProto.DataType.FLOAT;
export const INT32 = onnx.TensorProto.DataType.INT32;
export const INT64 = onnx.TensorProto.DataType.INT64;

/** A dimension: a fixed size or a symbolic name (batch, sequence). */
export type Dim = number | string;

export class GraphBuilder {
  private nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private inits: InstanceType<typeof onnx.TensorProto>[] = [];
  private inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private n = 0;

  constructor(readonly name: string) {}

  private valueInfo(name: string, elemType: number, dims: Dim[]) {
    const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
    return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim } } } });
  }

  input(name: string, elemType: number, dims: Dim[]): string {
    this.inputs.push(this.valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: Dim[]): void {
    this.outputs.push(this.valueInfo(name, elemType, dims));
  }

  /** An f32 initializer. The bytes are copied, so the caller's array may be reused. */
  weight(name: string, data: Float32Array, dims: number[]): string {
    const raw = new Uint8Array(data.byteLength);
    raw.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.inits.push(onnx.TensorProto.create({ name, dataType: FLOAT, dims, rawData: raw }));
    return name;
  }

  /** An int64 initializer (shapes, axes, split sizes). */
  ints(name: string, values: number[]): string {
    this.inits.push(onnx.TensorProto.create({ name, dataType: INT64, dims: [values.length], int64Data: values }));
    return name;
  }

  /** Adds a node; returns its output names (fresh ones unless given). Domain '' is the ONNX domain. */
  node(opType: string, inputs: string[], opts: { outputs?: string[] | number; attrs?: Record<string, Attr>; domain?: string } = {}): string[] {
    const outs = Array.isArray(opts.outputs) ? opts.outputs : Array.from({ length: opts.outputs ?? 1 }, () => `${opType}_${this.n++}`);
    const attribute = Object.entries(opts.attrs ?? {}).map(([name, v]) => attr(name, v));
    this.nodes.push(onnx.NodeProto.create({ opType, input: inputs, output: outs, name: `${opType}_${this.n++}`, domain: opts.domain ?? '', attribute }));
    return outs;
  }

  /** One-output node. */
  op(opType: string, inputs: string[], attrs?: Record<string, Attr>, domain?: string, output?: string): string {
    return this.node(opType, inputs, { attrs, domain, outputs: output ? [output] : 1 })[0];
  }

  /** Serialised ModelProto: ONNX opset 17 plus the com.microsoft contrib domain (onnxruntime's fused ops). */
  toBytes(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'm3web-cpu',
      opsetImport: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
      graph: onnx.GraphProto.create({ name: this.name, node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs }),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

const FLOAT_ATTRS = new Set(['epsilon', 'scale', 'alpha', 'mask_filter_value']);

function attr(name: string, v: Attr) {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: v });
  // The contrib ops' float attributes are named; every other number is an INT attribute.
  return FLOAT_ATTRS.has(name) ? onnx.AttributeProto.create({ name, type: T.FLOAT, f: v }) : onnx.AttributeProto.create({ name, type: T.INT, i: v });
}
