#!/usr/bin/python3
"""Builds m3-tiny's training text and pairs from sources whose terms allow shipping derived weights.

    /usr/bin/python3 training/data.py [--out training/runs/data]

Sources (licences in public/models/m3-tiny/README.md):
- Debian bookworm package descriptions, English and the DDTP translations (apt's Translation-xx
  files; fetched with `apt-get update -o Acquire::Languages=...` when missing): short -> long
  description pairs, English <-> translated pairs (joined by Description-md5).
- WordNet 3.0 (apt `wordnet-base`): lemmas -> gloss.
- man-page NAME lines (`man -k .`): name -> one-line description.
- Tatoeba bitext (../shared/data): the first half of every xxx-eng pair only (common.tatoeba_split); the
  second half is the evaluation split and is never read here.
- XQuAD (../shared/data): articles 0..19 only (questions -> paragraphs, across the 12 languages);
  articles 20..39 are the evaluation split.
SciFact and MS MARCO are evaluation only and are never read here.

Writes (deterministic for a fixed --seed):
  mlm.jsonl    {"t", "src"} one text per line (stage 1, tokenizer)
  pairs.jsonl  {"q", "p", "src", "group"} (stage 2; group ids mark pairs sharing a passage)
  stats.json   counts per source
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import subprocess

from common import REPO, SHARED, XQUAD_TRAIN_ARTICLES, ensure_apt, tatoeba_split

DDTP_LANGS = "en,de,fr,es,it,ru,ja,zh_CN,zh_TW,pt_BR,pt,nl,pl,cs,hu,sv,fi,da,uk,ro,tr,vi,el,ar,ko,ca,sk,eo,eu,gl,id,nb,sl,sr,hr,bg,he,hi,th,ta,lt,lv,et,fa,km,ml,mr,ka"
LISTS = "/var/lib/apt/lists"


def clean(t: str) -> str:
    return re.sub(r"\s+", " ", t.replace("\ufeff", "")).strip()


def apt_cat(path: str) -> str:
    # apt-helper decompresses whatever compression apt stored the list with (lz4 here).
    return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], check=True, capture_output=True, text=True).stdout


def ensure_translations() -> None:
    if not glob.glob(f"{LISTS}/*bookworm_main_i18n_Translation-en*") or not glob.glob(f"{LISTS}/*bookworm_main_i18n_Translation-de*"):
        subprocess.run(["apt-get", "update", "-o", f"Acquire::Languages={DDTP_LANGS}"], check=True, stdout=subprocess.DEVNULL)


def parse_translation(text: str, lang: str) -> dict[str, tuple[str, str]]:
    """Translation-xx: md5 -> (short, long). Long lines start with a space; ' .' is a paragraph break."""
    out: dict[str, tuple[str, str]] = {}
    for rec in text.split("\n\n"):
        md5 = short = None
        long: list[str] = []
        in_desc = False
        for line in rec.split("\n"):
            if line.startswith("Description-md5:"):
                md5 = line.split(":", 1)[1].strip()
            elif line.startswith(f"Description-{lang}:"):
                short, in_desc = line.split(":", 1)[1].strip(), True
            elif in_desc and line.startswith(" "):
                long.append("\n" if line.strip() == "." else line.strip())
            else:
                in_desc = False
        if md5 and short and long:
            out[md5] = (clean(short), clean(" ".join(long)))
    return out


def debian() -> tuple[list[str], list[dict]]:
    ensure_translations()
    by_lang: dict[str, dict[str, tuple[str, str]]] = {}
    for path in sorted(glob.glob(f"{LISTS}/*bookworm_main_i18n_Translation-*")):
        lang = path.rsplit("Translation-", 1)[1].split(".")[0].replace("%5f", "_")
        by_lang[lang] = parse_translation(apt_cat(path), lang)
    en = by_lang.pop("en")
    texts, pairs, seen = [], [], set()
    for md5 in sorted(en):
        short, long = en[md5]
        if long in seen:  # -dev/-doc/-data packages repeat their source's long description
            continue
        seen.add(long)
        texts.append(("debian-en", f"{short}. {long}"))
        pairs.append({"q": short, "p": long, "src": "debian-en", "group": f"deb:{md5}"})
        for lang in sorted(by_lang):
            tr = by_lang[lang].get(md5)
            if not tr:
                continue
            texts.append(("debian-xx", f"{tr[0]}. {tr[1]}"))
            # Cross-lingual: translated short -> English long and English short -> translated long.
            pairs.append({"q": tr[0], "p": long, "src": f"debian-{lang}", "group": f"deb:{md5}"})
            pairs.append({"q": short, "p": tr[1], "src": f"debian-{lang}", "group": f"deb:{md5}"})
    return texts, pairs


def wordnet() -> tuple[list[str], list[dict]]:
    ensure_apt(["wordnet-base"])
    texts, pairs = [], []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(f"/usr/share/wordnet/data.{pos}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                head, gloss = line.split("|", 1)
                parts = head.split()
                n = int(parts[3], 16)
                words = [parts[4 + 2 * i].replace("_", " ") for i in range(n)]
                words = [re.sub(r"\(.*\)$", "", w) for w in words]
                gloss = clean(gloss)
                definition = gloss.split('; "')[0]
                texts.append(f"{', '.join(words)}: {gloss}")
                pairs.append({"q": ", ".join(words), "p": definition, "src": "wordnet", "group": f"wn:{pos}:{parts[0]}"})
    return texts, pairs


def manpages() -> tuple[list[str], list[dict]]:
    out = subprocess.run(["man", "-k", "."], capture_output=True, text=True).stdout
    texts, pairs, seen = [], [], set()
    for line in sorted(set(out.splitlines())):
        m = re.match(r"^(.+?) \((\w+)\)\s+- (.+)$", line)
        if not m or m.group(3) in seen:
            continue
        seen.add(m.group(3))
        texts.append(f"{m.group(1)}: {clean(m.group(3))}")
        pairs.append({"q": m.group(1), "p": clean(m.group(3)), "src": "man", "group": f"man:{m.group(1)}"})
    return texts, pairs


def tatoeba() -> tuple[list[str], list[dict]]:
    root = os.path.join(SHARED, "datasets", "tatoeba")
    texts, pairs = [], []
    for path in sorted(glob.glob(os.path.join(root, "tatoeba.*-eng.eng"))):
        pair = path.split("tatoeba.")[1].split(".")[0]
        lang = pair.split("-")[0]
        with open(os.path.join(root, f"tatoeba.{pair}.{lang}"), encoding="utf-8") as f:
            xs = [clean(x) for x in f.read().rstrip("\n").split("\n")]
        with open(path, encoding="utf-8") as f:
            es = [clean(x) for x in f.read().rstrip("\n").split("\n")]
        assert len(xs) == len(es), pair
        half = tatoeba_split(len(xs))
        xs, es = xs[:half], es[:half]
        for i, (x, e) in enumerate(zip(xs, es)):
            if x and e:
                texts.append(x)
                pairs.append({"q": x, "p": e, "src": "tatoeba", "group": f"tat:{pair}:{i}"})
    return texts, pairs


def xquad() -> tuple[list[str], list[dict]]:
    root = os.path.join(SHARED, "datasets", "xquad")
    by_lang = {}
    for path in sorted(glob.glob(os.path.join(root, "xquad.*.json"))):
        with open(path, encoding="utf-8") as f:
            by_lang[path.split("xquad.")[1].split(".")[0]] = json.load(f)["data"][:XQUAD_TRAIN_ARTICLES]
    langs = sorted(by_lang)
    rng = random.Random(13)
    texts, pairs = [], []
    for a in range(XQUAD_TRAIN_ARTICLES):
        for p in range(len(by_lang["en"][a]["paragraphs"])):
            ctx = {l: clean(by_lang[l][a]["paragraphs"][p]["context"]) for l in langs}
            texts.extend(ctx[l] for l in langs)
            for qi in range(len(by_lang["en"][a]["paragraphs"][p]["qas"])):
                for lq in langs:
                    # Each question in every language, paired with the paragraph in a random language.
                    q = clean(by_lang[lq][a]["paragraphs"][p]["qas"][qi]["question"])
                    pairs.append({"q": q, "p": ctx[rng.choice(langs)], "src": "xquad", "group": f"xq:{a}:{p}"})
    return texts, pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "training", "runs", "data"))
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    texts: list[dict] = []
    pairs: list[dict] = []
    stats = {}
    for name, fn in [("debian", debian), ("wordnet", wordnet), ("man", manpages), ("tatoeba", tatoeba), ("xquad", xquad)]:
        t, p = fn()
        t = [x for x in t if x and (not isinstance(x, tuple) or x[1])]
        p = [x for x in p if x["q"] and x["p"] and x["q"] != x["p"]]
        stats[name] = {"texts": len(t), "pairs": len(p), "chars": sum(len(x[1] if isinstance(x, tuple) else x) for x in t)}
        print(name, stats[name], flush=True)
        # debian() tags its texts (English vs translated) so stage 1 can weight them; the rest are one source each.
        texts += [{"t": x[1], "src": x[0]} if isinstance(x, tuple) else {"t": x, "src": name} for x in t]
        pairs += p
    rng = random.Random(args.seed)
    rng.shuffle(texts)
    rng.shuffle(pairs)
    with open(os.path.join(args.out, "mlm.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    with open(os.path.join(args.out, "pairs.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs)
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=2)


if __name__ == "__main__":
    main()
