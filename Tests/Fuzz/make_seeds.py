"""Writes small seed inputs for the fuzz targets into CORPUS/{pickle,zip,safetensors} (run by run.sh).

Torch checkpoints are imitated without torch: stand-in `torch` classes are pickled (protocol 2)
exactly as torch.save names them, with persistent ids for the storages, and zipped stored.
"""
import collections, io, json, os, pickle, struct, sys, types, zipfile

corpus, fixtures = sys.argv[1], sys.argv[2]
for sub in ("pickle", "zip", "safetensors"):
    os.makedirs(os.path.join(corpus, sub), exist_ok=True)

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
with open(os.path.join(fixtures, "nanochat-d4/tokenizer/tokenizer.pkl"), "rb") as f:
    put("pickle", "tokenizer.pkl", f.read())
for p in ("nanochat-d4/base_checkpoints/d4/model_000600.pt", "nanochat-v0-random/model_000000.pt"):
    with zipfile.ZipFile(os.path.join(fixtures, p)) as zf:
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
with open(os.path.join(fixtures, "nanochat-d4/reference/forward.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
# The reference file's header with its tensors shrunk to [1] each, so the seed stays small.
small = [(k, v["dtype"], [1], b"\0" * {"F32": 4, "I32": 4, "I64": 8}[v["dtype"]])
         for k, v in header.items() if k != "__metadata__"]
put("safetensors", "reference_header.safetensors", safetensors(small, header.get("__metadata__")))
