#!/usr/bin/python3
"""m3-tiny's dense embeddings (last exit, 128 dims, the folder's pooling, L2) of every SciFact abstract (title + abstract,
cut to 128 tokens) and its 1,109 queries (64 tokens), with PyTorch (tools/eval/grid.py's loader of the shipped folder), for
tools/bench/search-recall.ts. PyTorch because the engine on SwiftShader would take far longer for the whole corpus; the
engine's parity with this loader is tests/m3-tiny.test.ts.

    /usr/bin/python3 tools/bench/search-embed-scifact.py OUT_DIR     (writes scifact-docs.f32, scifact-queries.f32, scifact-ids.json)
"""
import sys, os, json, zipfile, io, csv, ast, time
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, 'tools/eval')); sys.path.insert(0, os.path.join(REPO, 'training'))
from grid import Shipped  # noqa: E402
import torch, numpy as np
import torch.nn.functional as F
torch.set_num_threads(1)
out = sys.argv[1] if len(sys.argv) > 1 else '.'
os.makedirs(out, exist_ok=True)
m = Shipped(os.path.join(REPO, 'public/models/m3-tiny'))
root = os.environ.get('M3WEB_SHARED_DATA', os.path.join(REPO, '..', 'shared', 'data')) + '/datasets/scifact'
docs = []
with zipfile.ZipFile(os.path.join(root, 'scifact.zip')) as z:
    for r in csv.DictReader(io.TextIOWrapper(z.open('corpus_train.csv'), encoding='utf-8')):
        if not r['abstract'].strip(): continue
        docs.append((r['doc_id'], (r['title'] + ' ' + ' '.join(ast.literal_eval(r['abstract']))).strip()))
qs = [json.loads(l)['text'] for l in open(os.path.join(root, 'queries.jsonl')) if l.strip()]
t0 = time.time()
def enc(texts, L):
    E = m.encode(texts, L, colbert=False)
    k = max(E)
    return F.normalize(E[k]['dense'], dim=-1).numpy().astype(np.float32)
P = enc([t for _, t in docs], 128); print('docs', len(docs), time.time() - t0, flush=True)
Q = enc(qs, 64); print('queries', len(qs), time.time() - t0)
P.tofile(os.path.join(out, 'scifact-docs.f32')); Q.tofile(os.path.join(out, 'scifact-queries.f32'))
json.dump([i for i, _ in docs], open(os.path.join(out, 'scifact-ids.json'), 'w'))
