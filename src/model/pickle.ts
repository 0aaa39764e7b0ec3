/**
 * The pickle virtual machine for torch.save's data.pkl (see torch.ts for the file layout). It implements
 * only the opcodes a state_dict uses (names and encodings from CPython's Lib/pickletools.py, PEP 307 for
 * protocol 2, PEP 3154 for the protocol-4 additions) and only the allow-listed globals below: it never
 * executes anything, and any other global is a ModelFormatError.
 */
import { ModelFormatError } from '../errors.ts';
import { OPCODE_NAMES } from './pickle-opcodes.ts';
import { isIndex, isStorageRef, PyDict, PyGlobal, PyTuple, STORAGE_DTYPES, TensorRef } from './pickle-values.ts';
import { decodeUtf8, u64 } from './zip.ts';

/** Every global the VM will resolve. Anything else is rejected, so a hostile pickle can name but never run code. */
const ALLOWED_CALLABLES = new Set(['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor', 'torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state']);

function isAllowedGlobal(module: string, name: string): boolean {
  if (ALLOWED_CALLABLES.has(`${module}.${name}`)) return true;
  return module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name);
}

export class Unpickler {
  private pos = 0;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly view: DataView;

  constructor(
    private readonly data: Uint8Array,
    private readonly persistentLoad: (pid: unknown) => unknown,
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private fail(message: string, expected: string, received: unknown): never {
    throw new ModelFormatError(`torch data.pkl: ${message} (at byte ${this.pos})`, { expected, received });
  }

  private take(n: number): number {
    if (this.pos + n > this.data.byteLength) this.fail('pickle ends early', `${n} more bytes`, `${this.data.byteLength - this.pos}`);
    const at = this.pos;
    this.pos += n;
    return at;
  }
  private u8(): number {
    return this.data[this.take(1)];
  }
  private u16(): number {
    return this.view.getUint16(this.take(2), true);
  }
  private u32(): number {
    return this.view.getUint32(this.take(4), true);
  }
  private u64(): number {
    const at = this.take(8);
    return u64(this.view, at, 'pickle length');
  }
  private bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.data.subarray(at, at + n);
  }
  /** Text up to the next "\n" (GLOBAL's two arguments). */
  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('unterminated text line', 'a newline', 'end of pickle');
    const s = new TextDecoder().decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow', 'a value on the stack', 'an empty stack');
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow', 'a value on the stack', 'an empty stack');
    return this.stack[this.stack.length - 1];
  }
  /** Pop everything pushed since the last MARK (pickletools: "pop_mark"). */
  private popMark(): unknown[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (prev === undefined) this.fail('no MARK to pop to', 'a MARK opcode earlier', 'none');
    this.stack = prev;
    return items;
  }
  private put(index: number): void {
    this.memo.set(index, this.top());
  }
  private get(index: number): void {
    if (!this.memo.has(index)) this.fail('memo lookup of an unset index', 'an index set by BINPUT/MEMOIZE', index);
    this.stack.push(this.memo.get(index));
  }
  private asDict(v: unknown, op: string): PyDict {
    if (!(v instanceof PyDict)) this.fail(`${op} on a non-dict`, 'a dict', v);
    return v;
  }
  private asList(v: unknown, op: string): unknown[] {
    if (!Array.isArray(v)) this.fail(`${op} on a non-list`, 'a list', v);
    return v;
  }

  run(): unknown {
    for (;;) {
      const opAt = this.pos;
      const op = this.u8();
      switch (op) {
        case 0x80: {
          // PROTO <u8>: protocol version; torch writes 2 (DEFAULT_PROTOCOL in torch/serialization.py).
          const proto = this.u8();
          if (proto > 5) this.fail('unsupported pickle protocol', 'protocol <= 5', proto);
          break;
        }
        case 0x95: // FRAME <u64>: protocol-4 framing hint, no effect on the value stream.
          this.u64();
          break;
        case 0x2e: // STOP: the value on top of the stack is the result.
          return this.pop();
        case 0x28: // MARK
          this.metastack.push(this.stack);
          this.stack = [];
          break;
        case 0x30: // POP (pops the MARK itself when nothing was pushed after it, as CPython does)
          if (this.stack.length > 0) this.stack.pop();
          else this.popMark();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.stack.push(this.top());
          break;
        case 0x4e: // NONE
          this.stack.push(null);
          break;
        case 0x88: // NEWTRUE
          this.stack.push(true);
          break;
        case 0x89: // NEWFALSE
          this.stack.push(false);
          break;
        case 0x4a: // BININT <i32>
          this.stack.push(this.view.getInt32(this.take(4), true));
          break;
        case 0x4b: // BININT1 <u8>
          this.stack.push(this.u8());
          break;
        case 0x4d: // BININT2 <u16>
          this.stack.push(this.u16());
          break;
        case 0x8a: {
          // LONG1 <u8 n> <n bytes>: little-endian two's-complement integer (torch uses it for numel >= 2^31).
          const b = this.bytes(this.u8());
          let v = 0n;
          for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
          if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
          if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
            this.fail('integer too large', 'a value below 2^53', v);
          }
          this.stack.push(Number(v));
          break;
        }
        case 0x47: // BINFLOAT <f64 big-endian>
          this.stack.push(this.view.getFloat64(this.take(8), false));
          break;
        case 0x58: // BINUNICODE <u32 n> <n bytes UTF-8>
          this.stack.push(decodeUtf8(this.bytes(this.u32()), 'pickle string'));
          break;
        case 0x8c: // SHORT_BINUNICODE <u8 n> <n bytes UTF-8> (protocol 4)
          this.stack.push(decodeUtf8(this.bytes(this.u8()), 'pickle string'));
          break;
        case 0x8d: // BINUNICODE8 <u64 n> <n bytes UTF-8> (protocol 4)
          this.stack.push(decodeUtf8(this.bytes(this.u64()), 'pickle string'));
          break;
        case 0x42: // BINBYTES <u32 n>
          this.stack.push(this.bytes(this.u32()).slice());
          break;
        case 0x43: // SHORT_BINBYTES <u8 n>
          this.stack.push(this.bytes(this.u8()).slice());
          break;
        case 0x29: // EMPTY_TUPLE
          this.stack.push(new PyTuple([]));
          break;
        case 0x74: {
          // TUPLE: everything since MARK (pop first: popMark swaps `this.stack`)
          const items = this.popMark();
          this.stack.push(new PyTuple(items));
          break;
        }
        case 0x85: // TUPLE1
          this.stack.push(new PyTuple([this.pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = this.pop();
          this.stack.push(new PyTuple([this.pop(), b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = this.pop();
          const b = this.pop();
          this.stack.push(new PyTuple([this.pop(), b, c]));
          break;
        }
        case 0x5d: // EMPTY_LIST
          this.stack.push([]);
          break;
        case 0x6c: {
          // LIST: everything since MARK
          const items = this.popMark();
          this.stack.push(items);
          break;
        }
        case 0x61: {
          // APPEND
          const v = this.pop();
          this.asList(this.top(), 'APPEND').push(v);
          break;
        }
        case 0x65: {
          // APPENDS: everything since MARK onto the list below it
          const items = this.popMark();
          const list = this.asList(this.top(), 'APPENDS');
          for (const item of items) list.push(item); // not push(...items): a long MARK would overflow the call stack
          break;
        }
        case 0x7d: // EMPTY_DICT
          this.stack.push(new PyDict(false));
          break;
        case 0x64: {
          // DICT: key/value pairs since MARK
          const items = this.popMark();
          const d = new PyDict(false);
          for (let i = 0; i + 1 < items.length; i += 2) d.map.set(items[i], items[i + 1]);
          this.stack.push(d);
          break;
        }
        case 0x73: {
          // SETITEM: dict[key] = value
          const v = this.pop();
          const k = this.pop();
          this.asDict(this.top(), 'SETITEM').map.set(k, v);
          break;
        }
        case 0x75: {
          // SETITEMS: key/value pairs since MARK into the dict below it
          const items = this.popMark();
          const d = this.asDict(this.top(), 'SETITEMS');
          if (items.length % 2) this.fail('SETITEMS with an odd number of items', 'key/value pairs', items.length);
          for (let i = 0; i < items.length; i += 2) d.map.set(items[i], items[i + 1]);
          break;
        }
        case 0x71: // BINPUT <u8>
          this.put(this.u8());
          break;
        case 0x72: // LONG_BINPUT <u32>
          this.put(this.u32());
          break;
        case 0x94: // MEMOIZE (protocol 4): store top at the next memo index
          this.put(this.memo.size);
          break;
        case 0x68: // BINGET <u8>
          this.get(this.u8());
          break;
        case 0x6a: // LONG_BINGET <u32>
          this.get(this.u32());
          break;
        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.line();
          const name = this.line();
          this.stack.push(this.global(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL (protocol 4): module and name strings from the stack
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') {
            this.fail('STACK_GLOBAL needs two strings', 'module and name strings', `${typeof module}, ${typeof name}`);
          }
          this.stack.push(this.global(module, name));
          break;
        }
        case 0x51: // BINPERSID: persistent id on the stack -> torch's persistent_load(pid)
          this.stack.push(this.persistentLoad(this.pop()));
          break;
        case 0x52: {
          // REDUCE: callable(*args)
          const args = this.pop();
          const fn = this.pop();
          this.stack.push(this.reduce(fn, args));
          break;
        }
        case 0x62: {
          // BUILD: obj.__setstate__(state) / obj.__dict__.update(state)
          const state = this.pop();
          const obj = this.top();
          // A module state_dict() carries `_metadata` (per-submodule version info) as an attribute of the
          // OrderedDict; it does not change the tensors, so it is accepted and dropped.
          if (!(obj instanceof PyDict) || !(state instanceof PyDict || state === null)) {
            this.fail('BUILD on an object other than an OrderedDict', 'OrderedDict attributes such as _metadata', obj);
          }
          break;
        }
        default:
          this.pos = opAt;
          this.fail(
            `unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} (${OPCODE_NAMES[op] ?? 'unknown'}${op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : ''})`,
            'one of the opcodes torch.save emits for a state_dict',
            `opcode 0x${op.toString(16).padStart(2, '0')}`,
          );
      }
    }
  }

  private global(module: string, name: string): PyGlobal {
    if (!isAllowedGlobal(module, name)) {
      this.fail(`unsupported global ${module}.${name}`, `one of ${[...ALLOWED_CALLABLES].join(', ')}, torch.*Storage`, `${module}.${name}`);
    }
    return new PyGlobal(module, name);
  }

  private reduce(fn: unknown, argsValue: unknown): unknown {
    if (!(fn instanceof PyGlobal)) this.fail('REDUCE of a non-callable', 'a global', fn);
    if (!(argsValue instanceof PyTuple)) this.fail(`REDUCE of ${fn.qualified} without an argument tuple`, 'a tuple', argsValue);
    const args = argsValue.items;
    switch (fn.qualified) {
      case 'collections.OrderedDict': {
        const d = new PyDict(true);
        if (args.length === 1 && Array.isArray(args[0])) {
          for (const pair of args[0]) {
            if (!(pair instanceof PyTuple) || pair.items.length !== 2) this.fail('OrderedDict item is not a pair', '(key, value)', pair);
            d.map.set(pair.items[0], pair.items[1]);
          }
        } else if (args.length !== 0) {
          this.fail('OrderedDict called with unexpected arguments', '() or (list of pairs,)', args.length);
        }
        return d;
      }
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2': {
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None)
        const min = fn.name === '_rebuild_tensor' ? 4 : 6;
        if (args.length < min || args.length > 7) this.fail(`${fn.qualified} arity`, `${min} to 7 arguments`, args.length);
        const [storage, offset, size, stride] = args;
        if (!isStorageRef(storage)) this.fail(`${fn.qualified}: first argument is not a storage`, 'a persistent storage id', storage);
        if (!isIndex(offset)) this.fail(`${fn.qualified}: bad storage offset`, 'a non-negative integer', offset);
        const shape = this.intTuple(size, 'size');
        const strides = this.intTuple(stride, 'stride');
        if (shape.length !== strides.length) this.fail('size and stride ranks differ', `${shape.length} strides`, strides.length);
        return new TensorRef(storage, offset, shape, strides);
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state': {
        // _rebuild_parameter(data, requires_grad, backward_hooks[, state]): an nn.Parameter wrapping `data`.
        if (!(args[0] instanceof TensorRef)) this.fail(`${fn.qualified}: data is not a tensor`, 'a tensor', args[0]);
        return args[0];
      }
      default:
        return this.fail(`${fn.qualified} is not callable here`, 'OrderedDict or a torch rebuild function', fn.qualified);
    }
  }

  private intTuple(v: unknown, what: string): number[] {
    if (!(v instanceof PyTuple) || !v.items.every(isIndex)) this.fail(`tensor ${what} is not a tuple of non-negative ints`, 'tuple of ints', v);
    return v.items as number[];
  }
}
