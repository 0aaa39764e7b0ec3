#!/usr/bin/python3
"""Regenerates the PyTorch goldens and the ONNX comparison models: `npm run goldens`.

1. `npx tsx tools/fixtures/generate.ts` writes the seeded fixture models (fixtures/models/, git-ignored).
2. `npx tsx tools/goldens/inputs.ts` gives the golden texts and the token ids OUR tokenizer produces,
   so PyTorch and the TypeScript engine see the same ids.
3. For each golden fixture (bert-tiny, xlmr-tiny, m3bert-tiny) the model is rebuilt here from torch
   primitives (nn.TransformerEncoderLayer for BERT / XLM-R post-LN blocks, nn.MultiheadAttention plus
   RMSNorm / SwiGLU for m3BERT's bidirectional Llama blocks), independently of the TypeScript code, and
   cross-checked against a second, hand-written float64 computation (plain matmuls).
4. Writes fixtures/goldens/<fixture>.json and fixtures/onnx/{bert-tiny,xlmr-tiny}/model.onnx.

Runs under Debian's /usr/bin/python3 (apt-get install python3-torch python3-onnx); float32 on CPU,
one thread, no randomness: rerunning produces the same bytes.
"""
import base64
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
MODELS = os.path.join(REPO, 'fixtures', 'models')
GOLDENS = os.path.join(REPO, 'fixtures', 'goldens')
ONNX_DIR = os.path.join(REPO, 'fixtures', 'onnx')
SOURCE = 'tools/goldens/make_goldens.py'
ONNX_FIXTURES = ['bert-tiny', 'xlmr-tiny']

SHAPES_NOTE = (
    'Each b64 string is base64 of little-endian float32, row-major. Per case (texts cases[i].batch, '
    'padded to one batch on the right with the config pad id): hidden_states[l][i] (l = 0..L; 0 = '
    'embeddings output, l = output of block l before any exit norm) and exit[k-1][i] (k = 1..L; hidden '
    'states after the family exit rule: m3bert = final RMSNorm `norm`, bert/xlm-roberta = identity) are '
    '(n_i, H) with n_i = len(ids[batch[i]]) (unpadded positions only); pooled[k-1] is (B, H): exit-k '
    'hidden pooled with the fixture pooling (mean = masked mean, cls = first token), L2-normalised; '
    'pooled_dims["d"] is (B, d): the first d values of the un-normalised last-layer pooled vector, then '
    'L2-normalised. bge_m3 (xlmr-tiny only), per entry of bge_m3.layers: dense (B, H) = normalised CLS '
    'of the exit hidden; sparse[j][i] = {ids ascending, weights float32} = max per id of '
    'relu(sparse_linear(h)), ids 0,1,2,3 and weights <= 0 dropped; colbert[j][i] (n_i - 1, H) = '
    'normalise(colbert_linear(h[1:n_i])).'
)


# ----------------------------------------------------------------------------------------------------
# Fast-path guard: the fused kernels change numerics (and return zeros at padded positions). Computing
# with grad enabled and parameters that require grad keeps torch 1.13 off them; this makes sure.
def _forbidden(*_a, **_k):
    raise RuntimeError('make_goldens: a fused fast path was taken; the goldens must use the reference path')


torch._transformer_encoder_layer_fwd = _forbidden
torch._native_multi_head_attention = _forbidden


def run(cmd, capture=False):
    print('$ ' + ' '.join(cmd), file=sys.stderr)
    res = subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.PIPE if capture else None)
    return res.stdout.decode('utf8') if capture else None


def load_safetensors(path):
    dtypes = {'F32': np.float32, 'F16': np.float16, 'BF16': None, 'I64': np.int64, 'I32': np.int32}
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack('<Q', buf[:8])
    header = json.loads(buf[8:8 + n].decode('utf8'))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        dt = dtypes.get(info['dtype'])
        if dt is None:
            raise ValueError(f'{path}: dtype {info["dtype"]} not handled')
        s, e = info['data_offsets']
        arr = np.frombuffer(buf[base + s:base + e], dtype=np.dtype(dt).newbyteorder('<')).reshape(info['shape'])
        out[name] = torch.from_numpy(arr.astype(np.float32) if arr.dtype.kind == 'f' else arr.copy())
    return out


def read_json(*parts):
    with open(os.path.join(*parts), encoding='utf8') as f:
        return json.load(f)


def b64(t):
    a = np.ascontiguousarray(t.detach().to(torch.float32).numpy()).astype('<f4')
    return base64.b64encode(a.tobytes()).decode('ascii')


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Gelu(nn.Module):
    def forward(self, x):
        return F.gelu(x)


# ----------------------------------------------------------------------------------------------------
# Models built from torch primitives.
class BertLike(nn.Module):
    """BERT / XLM-RoBERTa encoder: LN(word + position + token_type) then post-LN TransformerEncoderLayers."""

    def __init__(self, cfg, w):
        super().__init__()
        self.family = cfg['model_type']
        self.pad = cfg['pad_token_id']
        H, nh, I, eps = cfg['hidden_size'], cfg['num_attention_heads'], cfg['intermediate_size'], cfg['layer_norm_eps']
        assert cfg['hidden_act'] == 'gelu'
        self.word = nn.Embedding.from_pretrained(w['embeddings.word_embeddings.weight'], freeze=False)
        self.pos = nn.Embedding.from_pretrained(w['embeddings.position_embeddings.weight'], freeze=False)
        self.token_type = nn.Embedding.from_pretrained(w['embeddings.token_type_embeddings.weight'], freeze=False)
        self.ln = nn.LayerNorm(H, eps=eps)
        self.ln.weight.data.copy_(w['embeddings.LayerNorm.weight'])
        self.ln.bias.data.copy_(w['embeddings.LayerNorm.bias'])
        self.layers = nn.ModuleList()
        for i in range(cfg['num_hidden_layers']):
            p = f'encoder.layer.{i}.'
            # A non-builtin GELU module (same erf GELU) also rules out the layer-level fused path.
            layer = nn.TransformerEncoderLayer(d_model=H, nhead=nh, dim_feedforward=I, dropout=0.0, activation=Gelu(),
                                               layer_norm_eps=eps, batch_first=True, norm_first=False)
            sa = layer.self_attn
            sa.in_proj_weight.data.copy_(torch.cat([w[p + f'attention.self.{x}.weight'] for x in ('query', 'key', 'value')]))
            sa.in_proj_bias.data.copy_(torch.cat([w[p + f'attention.self.{x}.bias'] for x in ('query', 'key', 'value')]))
            sa.out_proj.weight.data.copy_(w[p + 'attention.output.dense.weight'])
            sa.out_proj.bias.data.copy_(w[p + 'attention.output.dense.bias'])
            layer.linear1.weight.data.copy_(w[p + 'intermediate.dense.weight'])
            layer.linear1.bias.data.copy_(w[p + 'intermediate.dense.bias'])
            layer.linear2.weight.data.copy_(w[p + 'output.dense.weight'])
            layer.linear2.bias.data.copy_(w[p + 'output.dense.bias'])
            layer.norm1.weight.data.copy_(w[p + 'attention.output.LayerNorm.weight'])
            layer.norm1.bias.data.copy_(w[p + 'attention.output.LayerNorm.bias'])
            layer.norm2.weight.data.copy_(w[p + 'output.LayerNorm.weight'])
            layer.norm2.bias.data.copy_(w[p + 'output.LayerNorm.bias'])
            self.layers.append(layer)

    def position_ids(self, input_ids):
        if self.family == 'xlm-roberta':
            # transformers create_position_ids_from_input_ids: mask = input_ids != padding_idx, then
            # cumsum(mask) * mask + padding_idx — a literal <pad> inside the text gets padding_idx too.
            m = input_ids.ne(self.pad).long()
            return torch.cumsum(m, dim=1) * m + self.pad
        T = input_ids.shape[1]
        return torch.arange(T, dtype=torch.int64).unsqueeze(0).expand_as(input_ids)

    def hidden_states(self, input_ids, attention_mask, token_type_ids=None):
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.ln(self.word(input_ids) + self.pos(self.position_ids(input_ids)) + self.token_type(token_type_ids))
        pad_mask = attention_mask == 0
        hs = [x]
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad_mask)
            hs.append(x)
        return hs

    def exit(self, h):
        return h


class M3Bert(nn.Module):
    """m3BERT: input_norm(embed_tokens + pos_embeddings), pre-norm bidirectional Llama blocks, final norm at the exit."""

    def __init__(self, cfg, w):
        super().__init__()
        assert cfg['model_type'] == 'llama' and cfg.get('bi_attn') and cfg['hidden_act'] == 'silu'
        H, nh, I = cfg['hidden_size'], cfg['num_attention_heads'], cfg['intermediate_size']
        self.eps = cfg['rms_norm_eps']
        w = {k[len('model.'):]: v for k, v in w.items() if k.startswith('model.')}  # drops lm_head
        self.embed = nn.Embedding.from_pretrained(w['embed_tokens.weight'], freeze=False)
        self.pos = nn.Embedding.from_pretrained(w['pos_embeddings.weight'], freeze=False)
        self.input_norm = nn.Parameter(w['input_norm.weight'].clone())
        self.norm = nn.Parameter(w['norm.weight'].clone())
        self.blocks = nn.ModuleList()
        for i in range(cfg['num_hidden_layers']):
            p = f'layers.{i}.'
            blk = nn.Module()
            blk.attn = nn.MultiheadAttention(H, nh, bias=False, batch_first=True)
            blk.attn.in_proj_weight.data.copy_(torch.cat([w[p + f'self_attn.{x}_proj.weight'] for x in 'qkv']))
            blk.attn.out_proj.weight.data.copy_(w[p + 'self_attn.o_proj.weight'])
            blk.ln1 = nn.Parameter(w[p + 'input_layernorm.weight'].clone())
            blk.ln2 = nn.Parameter(w[p + 'post_attention_layernorm.weight'].clone())
            for name in ('gate', 'up', 'down'):
                lin = nn.Linear(*(reversed(w[p + f'mlp.{name}_proj.weight'].shape)), bias=False)
                lin.weight.data.copy_(w[p + f'mlp.{name}_proj.weight'])
                setattr(blk, name, lin)
            self.blocks.append(blk)

    def hidden_states(self, input_ids, attention_mask, token_type_ids=None):
        T = input_ids.shape[1]
        x = rms_norm(self.embed(input_ids) + self.pos(torch.arange(T).unsqueeze(0)), self.input_norm, self.eps)
        pad_mask = attention_mask == 0
        hs = [x]
        for b in self.blocks:
            xn = rms_norm(x, b.ln1, self.eps)
            h = x + b.attn(xn, xn, xn, key_padding_mask=pad_mask, need_weights=False)[0]
            hn = rms_norm(h, b.ln2, self.eps)
            x = h + b.down(F.silu(b.gate(hn)) * b.up(hn))
            hs.append(x)
        return hs

    def exit(self, h):
        return rms_norm(h, self.norm, self.eps)


class LastHidden(nn.Module):
    """The ONNX export wrapper: full depth, last_hidden_state after the exit rule."""

    def __init__(self, model, with_token_types):
        super().__init__()
        self.model = model
        self.with_token_types = with_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.model.exit(self.model.hidden_states(input_ids, attention_mask, token_type_ids)[-1])


# ----------------------------------------------------------------------------------------------------
# Independent second computation: plain float64 matmuls from the raw safetensors weights.
def manual_hidden_states(family, cfg, w, ids, mask):
    w = {k: v.double() for k, v in w.items()}
    B, T = ids.shape
    H, nh = cfg['hidden_size'], cfg['num_attention_heads']
    d = H // nh
    neg = (1.0 - mask.double())[:, None, None, :] * -1e30

    def attend(q, k, v):
        q, k, v = (t.reshape(B, T, nh, d).permute(0, 2, 1, 3) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / (d ** 0.5) + neg
        p = torch.exp(s - s.max(-1, keepdim=True).values)
        p = p / p.sum(-1, keepdim=True)
        return (p @ v).permute(0, 2, 1, 3).reshape(B, T, H)

    def lin(x, name, bias=True):
        y = x @ w[name + '.weight'].T
        return y + w[name + '.bias'] if bias else y

    def ln(x, name, eps):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * w[name + '.weight'] + w[name + '.bias']

    def rms(x, name, eps):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w[name]

    if family == 'm3bert':
        w = {k[len('model.'):]: v for k, v in w.items() if k.startswith('model.')}
        eps = cfg['rms_norm_eps']
        x = rms(w['embed_tokens.weight'][ids] + w['pos_embeddings.weight'][torch.arange(T)][None], 'input_norm.weight', eps)
        hs = [x]
        for i in range(cfg['num_hidden_layers']):
            p = f'layers.{i}.'
            xn = rms(x, p + 'input_layernorm.weight', eps)
            a = attend(lin(xn, p + 'self_attn.q_proj', False), lin(xn, p + 'self_attn.k_proj', False), lin(xn, p + 'self_attn.v_proj', False))
            h = x + lin(a, p + 'self_attn.o_proj', False)
            hn = rms(h, p + 'post_attention_layernorm.weight', eps)
            g = lin(hn, p + 'mlp.gate_proj', False)
            x = h + lin(g / (1 + torch.exp(-g)) * lin(hn, p + 'mlp.up_proj', False), p + 'mlp.down_proj', False)
            hs.append(x)
        return hs, [rms(h, 'norm.weight', eps) for h in hs[1:]]

    eps = cfg['layer_norm_eps']
    if family == 'xlm-roberta':
        pos = torch.zeros(B, T, dtype=torch.int64)
        for b in range(B):
            c = 0
            for t in range(T):
                real = int(ids[b, t]) != cfg['pad_token_id']  # by id, not by the attention mask (as upstream)
                c += int(real)
                pos[b, t] = cfg['pad_token_id'] + c if real else cfg['pad_token_id']
    else:
        pos = torch.arange(T).repeat(B, 1)
    x = ln(w['embeddings.word_embeddings.weight'][ids] + w['embeddings.position_embeddings.weight'][pos]
           + w['embeddings.token_type_embeddings.weight'][0], 'embeddings.LayerNorm', eps)
    hs = [x]
    for i in range(cfg['num_hidden_layers']):
        p = f'encoder.layer.{i}.'
        a = attend(lin(x, p + 'attention.self.query'), lin(x, p + 'attention.self.key'), lin(x, p + 'attention.self.value'))
        h = ln(x + lin(a, p + 'attention.output.dense'), p + 'attention.output.LayerNorm', eps)
        u = lin(h, p + 'intermediate.dense')
        u = 0.5 * u * (1 + torch.erf(u / 2 ** 0.5))
        x = ln(h + lin(u, p + 'output.dense'), p + 'output.LayerNorm', eps)
        hs.append(x)
    return hs, hs[1:]


# ----------------------------------------------------------------------------------------------------
def pad_batch(ids_list, pad):
    T = max(len(x) for x in ids_list)
    ids = torch.full((len(ids_list), T), pad, dtype=torch.int64)
    mask = torch.zeros((len(ids_list), T), dtype=torch.int64)
    for i, x in enumerate(ids_list):
        ids[i, :len(x)] = torch.tensor(x, dtype=torch.int64)
        mask[i, :len(x)] = 1
    return ids, mask


def pool(h, mask, mode):
    if mode == 'cls':
        return h[:, 0]
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


def load_heads(dirpath):
    heads = {}
    for name in ('colbert_linear', 'sparse_linear'):
        sd = torch.load(os.path.join(dirpath, name + '.pt'), map_location='cpu')
        lin = nn.Linear(sd['weight'].shape[1], sd['weight'].shape[0])
        lin.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()})
        heads[name] = lin
    return heads


def bge_m3_outputs(h, ids, mask, heads, special):
    """FlagEmbedding inference/embedder/encoder_only/m3.py: dense, sparse (_process_token_weights), colbert."""
    dense = F.normalize(h[:, 0], dim=-1)
    token_weights = torch.relu(heads['sparse_linear'](h)).squeeze(-1)
    sparse = []
    for b in range(ids.shape[0]):
        best = {}
        for wt, idx in zip(token_weights[b].tolist(), ids[b].tolist()):
            if idx not in special and wt > 0 and (idx not in best or wt > best[idx]):
                best[idx] = wt
        keys = sorted(best)
        sparse.append({'ids': keys, 'weights': [best[k] for k in keys]})
    colbert = heads['colbert_linear'](h[:, 1:]) * mask[:, 1:][:, :, None].to(h.dtype)
    colbert = F.normalize(colbert, dim=-1)
    colbert_rows = [colbert[b, :int(mask[b].sum()) - 1] for b in range(ids.shape[0])]
    return dense, sparse, colbert_rows


def make_golden(name, texts, ids_all):
    d = os.path.join(MODELS, name)
    cfg = read_json(d, 'config.json')
    pcfg = read_json(d, '1_Pooling', 'config.json')
    pooling = 'cls' if pcfg.get('pooling_mode_cls_token') else 'mean'
    assert pcfg.get('pooling_mode_cls_token') != pcfg.get('pooling_mode_mean_tokens'), pcfg
    family = 'm3bert' if cfg['model_type'] == 'llama' else cfg['model_type']
    weights = load_safetensors(os.path.join(d, 'model.safetensors'))
    model = M3Bert(cfg, weights) if family == 'm3bert' else BertLike(cfg, weights)
    model.eval()  # dropout is 0 anyway; grad stays enabled so the fast paths are skipped (and guarded)
    L, H, pad = cfg['num_hidden_layers'], cfg['hidden_size'], cfg['pad_token_id']
    dims = sorted(set([1, 7, H // 2, H]))

    out = {'fixture': name, 'family': family, 'source': SOURCE, 'torch': torch.__version__, 'shapes_note': SHAPES_NOTE,
           'texts': texts, 'ids': ids_all, 'pooling': pooling, 'num_layers': L, 'hidden_size': H, 'pad_token_id': pad,
           'cases': []}
    checks = {}
    for batch in (list(range(len(texts))), [0]):
        ids, mask = pad_batch([ids_all[i] for i in batch], pad)
        lens = [len(ids_all[i]) for i in batch]
        hs = [h.detach() for h in model.hidden_states(ids, mask)]
        exits = [model.exit(h).detach() for h in hs[1:]]
        # Padded positions must be real numbers too (the fused path would have zeroed them).
        assert all(bool(torch.isfinite(h).all()) for h in hs)
        assert not bool((mask == 0).any()) or float(hs[-1][mask == 0].abs().sum()) > 0
        pooled = [pool(e, mask, pooling) for e in exits]
        case = {
            'batch': batch,
            'hidden_states': [[b64(h[i, :n]) for i, n in enumerate(lens)] for h in hs],
            'exit': [[b64(e[i, :n]) for i, n in enumerate(lens)] for e in exits],
            'pooled': [b64(F.normalize(p, dim=-1)) for p in pooled],
            'pooled_dims': {str(dd): b64(F.normalize(pooled[-1][:, :dd], dim=-1)) for dd in dims},
        }
        out['cases'].append(case)

        # Self-check against the hand-written float64 computation, unpadded positions only.
        mhs, mexits = manual_hidden_states(family, cfg, weights, ids, mask)
        valid = mask.bool()
        dh = max(float((a.double() - b)[valid].abs().max()) for a, b in zip(hs, mhs))
        de = max(float((a.double() - b)[valid].abs().max()) for a, b in zip(exits, mexits))
        dp = max(float((F.normalize(pool(a.double(), mask, pooling), dim=-1) - F.normalize(pool(b, mask, pooling), dim=-1)).abs().max())
                 for a, b in zip(exits, mexits))
        checks[f'case{len(out["cases"]) - 1}'] = {'hidden': dh, 'exit': de, 'pooled': dp}

        if name == 'xlmr-tiny' and len(batch) == len(texts):
            heads = load_heads(d)
            special = {0, 1, 2, 3}  # <s>/CLS, <pad>, </s>/EOS, <unk>
            layers = [L, 1]
            bg = {'layers': layers, 'dense': [], 'sparse': [], 'colbert': []}
            for k in layers:
                dense, sparse, colbert = bge_m3_outputs(exits[k - 1], ids, mask, heads, special)
                bg['dense'].append(b64(dense.detach()))
                bg['sparse'].append([{'ids': s['ids'], 'weights': s['weights']} for s in sparse])
                bg['colbert'].append([b64(c.detach()) for c in colbert])
            out['bge_m3'] = bg

    os.makedirs(GOLDENS, exist_ok=True)
    path = os.path.join(GOLDENS, name + '.json')
    with open(path, 'w', encoding='utf8') as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write('\n')
    return model, cfg, path, checks


def export_onnx(name, model, cfg, ids_all):
    import onnx
    bert = cfg['model_type'] == 'bert'
    wrapper = LastHidden(model, bert).eval()
    ids, mask = pad_batch(ids_all[:2], cfg['pad_token_id'])
    args = (ids, mask, torch.zeros_like(ids)) if bert else (ids, mask)
    names = ['input_ids', 'attention_mask'] + (['token_type_ids'] if bert else [])
    axes = {n: {0: 'batch', 1: 'sequence'} for n in names}
    axes['last_hidden_state'] = {0: 'batch', 1: 'sequence'}
    path = os.path.join(ONNX_DIR, name, 'model.onnx')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(wrapper, args, path, input_names=names, output_names=['last_hidden_state'], dynamic_axes=axes,
                      opset_version=14, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    return path, ops


def main():
    torch.set_num_threads(1)
    torch.set_grad_enabled(True)
    run(['npx', 'tsx', 'tools/fixtures/generate.ts'])
    inputs = json.loads(run(['npx', 'tsx', 'tools/goldens/inputs.ts'], capture=True))
    for name in ('bert-tiny', 'xlmr-tiny', 'm3bert-tiny'):
        model, cfg, path, checks = make_golden(name, inputs[name]['texts'], inputs[name]['ids'])
        print(f'{name}: wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)')
        for case, c in checks.items():
            print(f'  self-check {case}: max |torch f32 - manual f64| hidden {c["hidden"]:.3g}, exit {c["exit"]:.3g}, pooled {c["pooled"]:.3g}')
            if max(c.values()) > 1e-4:
                raise SystemExit(f'{name}: torch primitives disagree with the manual computation')
        if name in ONNX_FIXTURES:
            opath, ops = export_onnx(name, model, cfg, inputs[name]['ids'])
            print(f'  wrote {os.path.relpath(opath, REPO)} ({os.path.getsize(opath)} bytes), onnx.checker ok; ops: {" ".join(ops)}')
    # No onnxruntime for this Python: the exported models are run by onnxruntime-web (wasm) in Node instead.
    run(['npx', 'tsx', 'tools/goldens/check_onnx.ts', *ONNX_FIXTURES])


if __name__ == '__main__':
    main()
