"""Writes small seed inputs for the fuzz targets into CORPUS/<target> (run by run.sh):
pickle, zip, safetensors, parquet, tokenizer, saelens.

  python3 make_seeds.py CORPUS

Every target gets seeds synthesized here with the standard library alone, plus seeds taken from the
real nanochat files in the repository (models/nanochat-d4, Tests/Fixtures).

Torch checkpoints are imitated without torch: stand-in `torch` classes are pickled (protocol 2)
exactly as torch.save names them, with persistent ids for the storages, and zipped stored.
tokenizer.pkl is imitated the same way with a stand-in `tiktoken.core.Encoding`.
"""
import collections, glob, io, json, os, pickle, random, shutil, struct, sys, types, zipfile

corpus = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
for sub in ("pickle", "zip", "safetensors", "parquet", "tokenizer", "saelens", "serve"):
    os.makedirs(os.path.join(corpus, sub), exist_ok=True)

def fixture(path):
    """The path of a nanochat file in the repo (models/ holds the d4 model and tokenizer,
    Tests/Fixtures the references and v0), or None if neither has it."""
    for root in ("Tests/Fixtures", "models"):
        full = os.path.join(repo, root, path)
        if os.path.isfile(full):
            return full
    return None

def put(sub, name, data):
    with open(os.path.join(corpus, sub, name), "wb") as f:
        f.write(data)

torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils; torch._utils = utils
for n in ("FloatStorage", "BFloat16Storage", "HalfStorage", "LongStorage", "IntStorage", "DoubleStorage",
          "ByteStorage", "BoolStorage"):
    cls = type(n, (), {"__module__": "torch"}); setattr(torch, n, cls)
def _rebuild_tensor_v2(*a): pass
def _rebuild_parameter(*a): pass
_rebuild_tensor_v2.__module__ = _rebuild_parameter.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2; utils._rebuild_parameter = _rebuild_parameter

class Storage:
    def __init__(self, kind, key, data, numel): self.kind, self.key, self.data, self.numel = kind, key, data, numel
class T:
    def __init__(self, storage, offset, size, stride): self.args = (storage, offset, size, stride)
    def __reduce__(self):
        return (_rebuild_tensor_v2, self.args + (False, collections.OrderedDict()))
class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.kind), obj.key, "cpu", obj.numel)
        return None

def checkpoint(tensors, force_zip64):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(collections.OrderedDict((k, v) for k, v in tensors))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", b"little")
        seen = set()
        for _, t in tensors:
            s = t.args[0]
            if s.key not in seen:
                seen.add(s.key)
                with z.open("archive/data/" + s.key, "w", force_zip64=force_zip64) as f:
                    f.write(s.data)
    return buf.getvalue(), out.getvalue()

f32 = Storage("FloatStorage", "0", struct.pack("<6f", 1, 2, 3, 4, 5, 6), 6)
bf16 = Storage("BFloat16Storage", "1", struct.pack("<4H", 0x3F80, 0xC020, 0, 0x4049), 4)
f16 = Storage("HalfStorage", "2", struct.pack("<4H", 0x3C00, 0xC100, 0x7BFF, 1), 4)
tensors = [("_orig_mod.w", T(f32, 0, (2, 3), (3, 1))), ("wT", T(f32, 0, (3, 2), (1, 3))),
           ("row", T(f32, 3, (3,), (1,))), ("b", T(bf16, 0, (2, 2), (2, 1))), ("h", T(f16, 1, (3,), (1,)))]
pkl, z = checkpoint(tensors, False)
put("pickle", "state_dict.pkl", pkl); put("zip", "small.pt", z)
put("zip", "small_zip64.pt", checkpoint(tensors, True)[1])
put("pickle", "mixed4.pkl", pickle.dumps({"a": [1, -2, 3.5, None, True, b"xy", (1, 2)], 7: "x", "big": 2**40}, protocol=4))
put("pickle", "mixed2.pkl", pickle.dumps({"a": [1, -2, 3.5, None, True, (1, 2)], 7: "x", "big": -2**40}, protocol=2))
if fixture("nanochat-d4/tokenizer/tokenizer.pkl"):
    with open(fixture("nanochat-d4/tokenizer/tokenizer.pkl"), "rb") as f:
        put("pickle", "tokenizer.pkl", f.read())
for p in ("nanochat-d4/base_checkpoints/d4/model_000600.pt", "nanochat-v0-random/model_000000.pt"):
    if not fixture(p): continue
    with zipfile.ZipFile(fixture(p)) as zf:
        name = [n for n in zf.namelist() if n.endswith("data.pkl")][0]
        put("pickle", os.path.basename(p) + ".data.pkl", zf.read(name))

def safetensors(entries, metadata):
    header, data = {}, b""
    if metadata: header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

put("safetensors", "mixed.safetensors", safetensors([
    ("w", "F32", [2, 2], struct.pack("<4f", 1, -2, 3, 0.5)), ("b", "BF16", [2], struct.pack("<2H", 0x3F80, 0xC020)),
    ("h", "F16", [1], struct.pack("<H", 0x3C00)), ("d", "F64", [1], struct.pack("<d", 0.1)),
    ("t", "I64", [1, 2], struct.pack("<2q", 4087, -1)), ("i", "I32", [1], struct.pack("<i", 7)),
    ("s", "I16", [1], struct.pack("<h", -3)), ("c", "I8", [1], b"\xff"), ("u", "U8", [2], b"\x01\xff"),
    ("q", "BOOL", [1], b"\x01"), ("e", "F32", [0, 3], b"")], {"hook_name": "blocks.0.hook_resid_post"}))
if fixture("nanochat-d4/reference/forward.safetensors"):
    with open(fixture("nanochat-d4/reference/forward.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    # The reference file's header with its tensors shrunk to [1] each, so the seed stays small.
    small = [(k, v["dtype"], [1], b"\0" * {"F32": 4, "I32": 4, "I64": 8}[v["dtype"]])
             for k, v in header.items() if k != "__metadata__"]
    put("safetensors", "reference_header.safetensors", safetensors(small, header.get("__metadata__")))

# --- parquet: the reader's own test files (in the repo; each a few KB, one codec/encoding each).
# nanochat's shards are over a megabyte, beyond -max_len, so they are not seeds.
for p in sorted(glob.glob(os.path.join(repo, "Tests/FormatsTests/parquet/*.parquet"))):
    with open(p, "rb") as f:
        put("parquet", os.path.basename(p), f.read())

# --- tokenizer: tokenizer.pkl is a pickled tiktoken.core.Encoding (protocol 4: STACK_GLOBAL, NEWOBJ,
# then BUILD with the state dict {name, pat_str, mergeable_ranks: {bytes: id}, special_tokens}).
# The real one has 4096 ranks (44 KB); the seeds keep the 256 single bytes plus a few hundred merges.
tiktoken = types.ModuleType("tiktoken"); core = types.ModuleType("tiktoken.core")
sys.modules["tiktoken"] = tiktoken; sys.modules["tiktoken.core"] = core; tiktoken.core = core
Encoding = type("Encoding", (), {"__module__": "tiktoken.core"}); core.Encoding = Encoding
PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
SPECIALS = ["<|bos|>", "<|user_start|>", "<|user_end|>", "<|assistant_start|>", "<|assistant_end|>",
            "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"]

def encoding(ranks, specials, protocol=4, pattern=PATTERN):
    e = Encoding()
    e.__dict__.update({"name": "rustbpe", "pat_str": pattern, "mergeable_ranks": ranks, "special_tokens": specials})
    return pickle.dumps(e, protocol=protocol)

def train_bpe(text, merges):
    """Byte-level BPE on `text` (no pre-splitting): the 256 bytes, then `merges` merged pairs."""
    ranks = {bytes([b]): b for b in range(256)}
    words = [[bytes([b]) for b in w.encode()] for w in text.split(" ")]
    for _ in range(merges):
        counts = collections.Counter((w[i], w[i + 1]) for w in words for i in range(len(w) - 1))
        if not counts: break
        (a, b), _ = counts.most_common(1)[0]
        ranks[a + b] = len(ranks)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if w[i] == a and w[i + 1] == b: w[i:i + 2] = [a + b]
                i += 1
    return ranks

sample = ("Hello, world! It's the tokenizer of nanochat: the quick brown fox jumps over the lazy dog, "
          "then the dog sleeps. Numbers 12345 and café naïve 東京 🎉 ") * 3
ranks = train_bpe(sample, 60)
specials = {name: len(ranks) + i for i, name in enumerate(SPECIALS)}
put("tokenizer", "synthetic_p4.pkl", encoding(ranks, specials, 4))
put("tokenizer", "synthetic_p3.pkl", encoding(ranks, specials, 3))
put("tokenizer", "bytes_only.pkl", encoding({bytes([b]): b for b in range(256)}, {"<|bos|>": 256}))
if fixture("nanochat-d4/tokenizer/tokenizer.pkl"):
    class Stand(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("tiktoken.core", "Encoding"): return Encoding
            raise pickle.UnpicklingError(f"{module}.{name}")
    with open(fixture("nanochat-d4/tokenizer/tokenizer.pkl"), "rb") as f:
        state = Stand(f).load().__dict__
    keep = 256 + 300
    real = {b: i for b, i in state["mergeable_ranks"].items() if i < keep}
    real_specials = {n: keep + i for i, n in enumerate(state["special_tokens"])}
    put("tokenizer", "nanochat_d4_556.pkl", encoding(real, real_specials, 4))

# --- saelens: one input is a whole SAE directory, cfg.json | 0x00 | sae_weights.safetensors
# (see FuzzSAELens.swift). One small SAE (d_in 8, d_sae 16) per SAELens architecture, cfg.json as
# SAE.saveSAELens writes it.
rng = random.Random(19)
def floats(n, lo=-1.0, hi=1.0):
    return struct.pack(f"<{n}f", *(rng.uniform(lo, hi) for _ in range(n)))

def sae_dir(arch, d=8, m=16, apply_b_dec=True, k=4, dtype="F32", minimal=False):
    meta = {"sae_lens_version": "6.0.0", "hook_name": "blocks.2.hook_resid_post", "model_name": "nanochat",
            "context_size": 64, "prepend_bos": True}
    cfg = {"architecture": arch, "d_in": d, "d_sae": m, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": apply_b_dec, "normalize_activations": "none",
           "reshape_activations": "none", "metadata": meta}
    if arch == "topk": cfg["k"] = k; cfg["rescale_acts_by_decoder_norm"] = False
    if minimal: cfg = {key: cfg[key] for key in ("architecture", "d_in", "d_sae", "k") if key in cfg}
    shapes = [("W_enc", [d, m]), ("W_dec", [m, d]), ("b_dec", [d])]
    if arch == "gated": shapes += [("b_gate", [m]), ("r_mag", [m]), ("b_mag", [m])]
    else: shapes += [("b_enc", [m])]
    if arch == "jumprelu": shapes += [("threshold", [m])]
    entries = []
    for name, shape in shapes:
        n = 1
        for x in shape: n *= x
        raw = floats(n, 0.01, 0.5) if name == "threshold" else floats(n)
        if dtype == "BF16":
            raw = b"".join(struct.pack("<H", struct.unpack("<I", raw[i:i + 4])[0] >> 16) for i in range(0, len(raw), 4))
        entries.append((name, dtype, shape, raw))
    c = json.dumps(cfg, separators=(",", ":")).encode() if minimal else json.dumps(cfg, indent=2, sort_keys=True).encode()
    return c + b"\0" + safetensors(entries, None)

for arch in ("topk", "standard", "gated", "jumprelu"):
    put("saelens", arch + ".sae", sae_dir(arch))
put("saelens", "gated_no_b_dec.sae", sae_dir("gated", apply_b_dec=False))
put("saelens", "standard_no_b_dec.sae", sae_dir("standard", apply_b_dec=False))
put("saelens", "topk_bf16.sae", sae_dir("topk", d=4, m=8, k=2, dtype="BF16"))

# serve: request bodies of sae-run serve's two endpoints (Runtime/ServeRequests.swift).
steer = {"hook": "blocks.2.hook_resid_post", "feature": 3, "value": 5.5, "mode": "clamp", "scope": "gen"}
for i, body in enumerate([
        {"prompt": "The Python interpreter", "top": 3},
        {"prompt": "Hello", "max_tokens": 5, "temperature": 0.7, "seed": 18446744073709551615, "steer": [steer]},
        {"prompt": "x", "steer": [{"hook": "blocks.3.hook_mlp_out", "feature": 6, "value": -1e3, "mode": "scale"},
                                   {"hook": "blocks.2.hook_resid_post", "feature": 1023, "value": 0}]},
        {"prompt": "\u00e9\u0301 combining", "max_tokens": 64}]):
    put("serve", f"body{i}.json", json.dumps(body).encode())
put("serve", "deep.json", b'{"prompt":"a","steer":[[[[[[[[[]]]]]]]]]}')
# The same with only the keys the loader needs and d_in 2, d_sae 4 (about 400 bytes): the numbers in
# cfg.json are a larger share of the input, so mutations reach them more often. JSONSerialization is
# not instrumented, so coverage cannot guide the fuzzer there.
for arch in ("topk", "standard", "gated", "jumprelu"):
    put("saelens", arch + "_minimal.sae", sae_dir(arch, d=2, m=4, k=2, minimal=True))
