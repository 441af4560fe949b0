#!/usr/bin/env python3
"""Writes tests/corpus: small broken inputs, each expected to fail with its own error.

The generated files are checked in; tests/hostile_input_test.cpp holds the table of
(file, expected exit status, expected message). Run this script again after changing it:

    python3 tests/corpus/make_corpus.py

Only the standard library is used, and the output is deterministic (no randomness, no
timestamps), so a re-run leaves `git status` clean unless this script changed.
"""

import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
LINEAR = "model.layers.0.mlp.down_proj"
OUT, IN, GROUPS = 8, 64, 2  # group size 32: a valid AWQ and GPTQ W4A16 linear


def dtype_size(dtype):
    return {"I8": 1, "U8": 1, "BOOL": 1, "F16": 2, "BF16": 2, "I16": 2, "F32": 4, "I32": 4, "F64": 8, "I64": 8}[dtype]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def tensor_bytes(dtype, shape, fill):
    """Deterministic bytes for a tensor: `fill(i)` gives element i as a Python number."""
    count = numel(shape)
    if dtype == "I8":
        return struct.pack("<%db" % count, *[fill(i) for i in range(count)])
    if dtype == "F32":
        return struct.pack("<%df" % count, *[float(fill(i)) for i in range(count)])
    if dtype == "F16":
        return struct.pack("<%de" % count, *[float(fill(i)) for i in range(count)])
    if dtype == "I32":
        return struct.pack("<%di" % count, *[int(fill(i)) for i in range(count)])
    return bytes(count * dtype_size(dtype))


def safetensors(tensors, metadata=None):
    """A valid safetensors file from [(name, dtype, shape, bytes)], in that order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name, dtype, shape, payload in tensors:
        assert len(payload) == numel(shape) * dtype_size(dtype), name
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    return raw(json.dumps(header, separators=(",", ":")).encode(), data)


def raw(header, data=b"", length=None):
    """A file from header bytes as given (no validation) and data; `length` overrides the prefix."""
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def entry(name, dtype="F32", shape=(2,), offsets=(0, 8)):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (
        name, dtype, json.dumps(list(shape)).replace(" ", ""), offsets[0], offsets[1])


def obj(*entries):
    return ("{" + ",".join(entries) + "}").encode()


def base_tensors(weight=None, scale=None, offset=None, norm=None):
    """The valid model: one W4A16 linear (per-group, asymmetric) and one FLOAT norm."""
    w = weight or ("I8", [OUT, IN], lambda i: (i % 16) - 8)
    s = scale or ("F32", [OUT, GROUPS], lambda i: 0.5 + i / 64)
    o = offset or ("F32", [OUT, GROUPS], lambda i: (i % 5) - 2)
    n = norm or ("F16", [OUT], lambda i: 1.0)
    return [
        (LINEAR + ".weight", w[0], w[1], tensor_bytes(*w)),
        (LINEAR + ".weight_scale", s[0], s[1], tensor_bytes(*s)),
        (LINEAR + ".weight_offset", o[0], o[1], tensor_bytes(*o)),
        ("model.norm.weight", n[0], n[1], tensor_bytes(*n)),
    ]


BASE_DESCRIPTION = {
    "model_quant_type": "W4A16",
    LINEAR + ".weight": "W4A16",
    LINEAR + ".weight_scale": "W4A16",
    LINEAR + ".weight_offset": "W4A16",
    "model.norm.weight": "FLOAT",
}


def write(relative, content):
    path = os.path.join(ROOT, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())


def header_cases():
    """Broken safetensors files, converted with base/description.json."""
    ok_data = bytes(8)
    cases = {
        "empty": b"",
        "short-5-bytes": b"\x05\x00\x00\x00\x00",
        "short-7-bytes": b"\x02\x00\x00\x00\x00\x00\x00",
        "length-only": raw(b"", length=0),
        "header-past-end": raw(b'{"a":1}', length=1000),
        "header-over-100mb": raw(b"{}", length=100_000_001),
        "header-length-max": raw(b"{}", length=0xFFFFFFFFFFFFFFFF),
        "header-not-utf8": raw(b'{"t\xff\xfe.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', ok_data),
        "header-not-json": raw(b'{"t.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]', ok_data),
        "header-garbage": raw(b"{not json at all}", ok_data),
        "header-array": raw(b'[{"dtype":"F32"}]', ok_data),
        "header-string": raw(b'"header"', ok_data),
        "header-content-after": raw(obj(entry("t.weight")) + b' {"x":1}', ok_data),
        "entry-not-object": raw(b'{"t.weight":[1,2,3]}', ok_data),
        "entry-no-dtype": raw(b'{"t.weight":{"shape":[2],"data_offsets":[0,8]}}', ok_data),
        "entry-no-shape": raw(b'{"t.weight":{"dtype":"F32","data_offsets":[0,8]}}', ok_data),
        "entry-no-offsets": raw(b'{"t.weight":{"dtype":"F32","shape":[2]}}', ok_data),
        "entry-dtype-twice": raw(b'{"t.weight":{"dtype":"F32","shape":[2],"dtype":"I8","data_offsets":[0,8]}}', ok_data),
        "dtype-not-string": raw(b'{"t.weight":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}', ok_data),
        "dtype-unknown": raw(obj(entry("t.weight", dtype="Q4_K")), ok_data),
        "dtype-lowercase": raw(obj(entry("t.weight", dtype="f32")), ok_data),
        "shape-not-array": raw(b'{"t.weight":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', ok_data),
        "shape-negative": raw(b'{"t.weight":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', ok_data),
        "shape-fraction": raw(b'{"t.weight":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', ok_data),
        "shape-exponent": raw(b'{"t.weight":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', ok_data),
        "shape-string": raw(b'{"t.weight":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', ok_data),
        "shape-huge-number": raw(b'{"t.weight":{"dtype":"F32","shape":[184467440737095516160],"data_offsets":[0,8]}}',
                                 ok_data),
        "shape-overflow": raw(obj(entry("t.weight", shape=(4294967296, 4294967296, 2), offsets=(0, 0)))),
        "shape-overflow-dtype": raw(obj(entry("t.weight", dtype="F64", shape=(2305843009213693952,), offsets=(0, 0)))),
        "shape-mismatch": raw(obj(entry("t.weight", shape=(4,), offsets=(0, 8))), ok_data),
        "shape-mismatch-larger": raw(obj(entry("t.weight", shape=(4,), offsets=(0, 32))), bytes(32)),
        "offsets-one-number": raw(b'{"t.weight":{"dtype":"F32","shape":[2],"data_offsets":[8]}}', ok_data),
        "offsets-three-numbers": raw(b'{"t.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}}', ok_data),
        "offsets-negative": raw(b'{"t.weight":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', ok_data),
        "offsets-reversed": raw(obj(entry("t.weight", shape=(0,), offsets=(8, 0))), ok_data),
        "offsets-out-of-bounds": raw(obj(entry("t.weight", shape=(4,), offsets=(0, 16))), ok_data),
        "offsets-far-out-of-bounds": raw(obj(entry("t.weight", dtype="I8", shape=(18446744073709551615,),
                                                   offsets=(0, 18446744073709551615))), ok_data),
        "offsets-far-hole": raw(obj(entry("t.weight", dtype="I8", shape=(15,),
                                          offsets=(18446744073709551600, 18446744073709551615))), ok_data),
        "offsets-overlap": raw(obj(entry("a.weight", shape=(2,), offsets=(0, 8)),
                                   entry("b.weight", shape=(2,), offsets=(4, 12))), bytes(12)),
        "offsets-same-range": raw(obj(entry("a.weight", shape=(2,), offsets=(0, 8)),
                                      entry("b.weight", shape=(2,), offsets=(0, 8))), ok_data),
        "offsets-hole": raw(obj(entry("a.weight", shape=(1,), offsets=(0, 4)),
                                entry("b.weight", shape=(1,), offsets=(8, 12))), bytes(12)),
        "offsets-hole-at-start": raw(obj(entry("a.weight", shape=(1,), offsets=(4, 8))), ok_data),
        "trailing-bytes": raw(obj(entry("t.weight")), bytes(12)),
        "duplicate-key": raw(obj(entry("t.weight", offsets=(0, 8)), entry("t.weight", offsets=(8, 16))), bytes(16)),
        # A name with a newline, ESC (a terminal colour sequence), NUL and a C1 control: the one
        # error line must show them escaped.
        "name-control-characters": raw(b'{"t\\n.weight\\u001b[31m\\u0000\\u009b":[1]}', ok_data),
        "metadata-not-object": raw(b'{"__metadata__":"pt",' + obj(entry("t.weight"))[1:], ok_data),
        "metadata-not-strings": raw(b'{"__metadata__":{"format":1},' + obj(entry("t.weight"))[1:], ok_data),
    }
    # The file-name check of the length prefix: a length just past the end by one byte.
    header = obj(entry("t.weight"))
    cases["header-past-end-by-one"] = raw(header, b"", length=len(header) + 1)
    # The valid model with one key given twice, the last value valid: read as "the last wins",
    # each would convert.
    model = safetensors(base_tensors(), metadata={"format": "pt"})
    size = struct.unpack("<Q", model[:8])[0]
    model_header, model_data = model[8:8 + size], model[8 + size:]

    def twice(old, new):
        assert model_header.count(old) == 1, old
        return raw(model_header.replace(old, new), model_data)

    cases["metadata-twice"] = twice(b'"__metadata__":{"format":"pt"},',
                                    b'"__metadata__":{"format":"pt"},"__metadata__":{"format":"pt"},')
    cases["entry-shape-twice"] = twice(b'"model.norm.weight":{"dtype":"F16","shape":[8],',
                                       b'"model.norm.weight":{"dtype":"F16","shape":[4],"shape":[8],')
    cases["entry-offsets-twice"] = twice(b'"shape":[8],"data_offsets":[640,656]',
                                         b'"shape":[8],"data_offsets":[0,16],"data_offsets":[640,656]')
    for name, content in cases.items():
        write("header/%s.safetensors" % name, content)


def description_cases():
    """Broken descriptions, converted with base/model.safetensors."""
    good = json.dumps(BASE_DESCRIPTION, indent=2)
    cases = {
        "empty": "",
        "whitespace": "  \n",
        "truncated": good[: len(good) // 2],
        "not-object-array": json.dumps(list(BASE_DESCRIPTION.keys())),
        "not-object-string": '"W4A16"',
        "not-object-number": "4",
        "content-after": good + "\n{}\n",
        "single-quotes": good.replace('"', "'"),
        "trailing-comma": good[:-2] + ",\n}",
        "deep-nesting-unclosed": '{"metadata": ' + "[" * 5000 + "}",
    }
    for name, content in cases.items():
        write("description/%s.json" % name, content)
    write("description/not-utf8.json", b'{"model_quant_type": "W4A16", "\xc3\x28": "FLOAT"}')


def plan_cases():
    """Well-formed files whose tensors cannot be a quantized linear; with base/description.json."""
    cases = {
        "weight-f16": base_tensors(weight=("F16", [OUT, IN], lambda i: 1.0)),
        "weight-i32": base_tensors(weight=("I32", [OUT, IN], lambda i: 1)),
        "weight-1d": base_tensors(weight=("I8", [OUT * IN], lambda i: 0)),
        "scale-rows": base_tensors(scale=("F32", [OUT // 2, GROUPS], lambda i: 1.0)),
        "scale-groups-not-dividing": base_tensors(scale=("F32", [OUT, 3], lambda i: 1.0),
                                                  offset=("F32", [OUT, 3], lambda i: 0)),
        "scale-3d": base_tensors(scale=("F32", [OUT, GROUPS, 1], lambda i: 1.0)),
        "scale-i32": base_tensors(scale=("I32", [OUT, GROUPS], lambda i: 1)),
        "offset-shape": base_tensors(offset=("F32", [OUT, GROUPS + 1], lambda i: 0)),
    }
    for name, tensors in cases.items():
        write("plan/%s.safetensors" % name, safetensors(tensors))
    # A quantized weight whose scale is absent from the checkpoint.
    write("plan/scale-missing.safetensors", safetensors([t for t in base_tensors() if not t[0].endswith("_scale")]))


def sharded_cases():
    """Sharded checkpoints: <dir>/model.safetensors.index.json beside its shards."""
    tensors = base_tensors()
    first, second = tensors[:3], tensors[3:]
    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"

    def index(weight_map, extra=None):
        doc = {"metadata": {"total_size": sum(len(t[3]) for t in tensors)}, "weight_map": weight_map}
        doc.update(extra or {})
        return json.dumps(doc, indent=2)

    good_map = {t[0]: s1 for t in first}
    good_map.update({t[0]: s2 for t in second})

    def case(name, index_text, shards):
        write("sharded/%s/model.safetensors.index.json" % name, index_text)
        for shard_name, shard_tensors in shards.items():
            content = shard_tensors if isinstance(shard_tensors, bytes) else safetensors(shard_tensors)
            write("sharded/%s/%s" % (name, shard_name), content)

    case("valid", index(good_map), {s1: first, s2: second})
    case("missing-shard", index(good_map), {s1: first})
    absent = dict(good_map)
    absent["model.layers.0.mlp.gate_proj.weight"] = s1
    case("tensor-absent", index(absent), {s1: first, s2: second})
    wrong = dict(good_map)
    wrong["model.norm.weight"] = s1
    wrong[LINEAR + ".weight"] = s2  # keep s2 named, so both shards are opened
    case("tensor-in-other-shard", index(wrong), {s1: first, s2: second})
    case("tensor-in-two-shards", index(good_map), {s1: first + second, s2: second})
    escape = dict(good_map)
    escape["model.norm.weight"] = "../valid/" + s2
    case("shard-path-escape", index(escape), {s1: first})
    # Found with the shard_index fuzz target's invariant: a NUL ended the path early, so this
    # index, naming "model-00001-of-00002.safetensors<NUL>.evil", read model-00001-of-00002.safetensors.
    nul = {name: (shard + "\u0000.evil" if shard == s1 else shard) for name, shard in good_map.items()}
    case("shard-name-nul", index(nul), {s1: first, s2: second})
    case("shard-broken-header", index(good_map), {s1: first, s2: raw(b'{"model.norm.weight":', bytes(16))})
    newline = dict(good_map)
    newline["model.norm\n.weight\u001b[2J"] = s2
    case("tensor-name-control-characters", index(newline), {s1: first, s2: second})
    case("index-not-json", index(good_map)[:-3], {s1: first, s2: second})
    case("index-not-object", json.dumps([s1, s2]), {s1: first, s2: second})
    case("index-no-weight-map", json.dumps({"metadata": {"total_size": 0}}), {s1: first, s2: second})
    case("weight-map-not-object", json.dumps({"weight_map": [s1, s2]}), {s1: first, s2: second})
    case("weight-map-entry-not-string", json.dumps({"weight_map": {LINEAR + ".weight": 1}}), {s1: first})
    dup = index(good_map).replace('"weight_map": {', '"weight_map": {\n    "model.norm.weight": "%s",' % s2, 1)
    case("weight-map-duplicate", dup, {s1: first, s2: second})
    # Found by the shard_index fuzz target: a second "weight_map" object listed tensors again.
    twice = index(good_map)[:-2] + ',\n  "weight_map": {"model.norm.weight": "%s"}\n}' % s2
    case("weight-map-twice", twice, {s1: first, s2: second})


def base():
    write("base/model.safetensors", safetensors(base_tensors()))
    write("base/description.json", json.dumps(BASE_DESCRIPTION, indent=2) + "\n")
    # Valid, if odd: metadata nested deeper than recursive parsers (Python's json, simdjson's DOM)
    # accept. The scan skips it without recursion; the conversion must succeed.
    deep = json.dumps(BASE_DESCRIPTION, indent=2)[:-2] + ',\n  "metadata": ' + "[" * 5000 + "]" * 5000 + "\n}\n"
    write("base/deep-metadata-description.json", deep)
    # A description for a W4A16 weight that is also labelled W8A16 elsewhere: one bit width only.
    mixed = dict(BASE_DESCRIPTION)
    mixed["model.norm.weight"] = "W8A16"
    write("description/mixed-bit-widths.json", json.dumps(mixed, indent=2) + "\n")


def main():
    for folder in ("base", "header", "description", "plan", "sharded"):
        shutil.rmtree(os.path.join(ROOT, folder), ignore_errors=True)
    base()
    header_cases()
    description_cases()
    plan_cases()
    sharded_cases()


if __name__ == "__main__":
    main()
