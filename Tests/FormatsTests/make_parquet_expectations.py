#!/usr/bin/env python3
"""Regenerates the parquet test data for FormatsTests (run once, commit the output).

Writes, with pyarrow (`pip install pyarrow`):
  Tests/FormatsTests/parquet/*.parquet       small files covering codecs, encodings, page versions,
                                             nulls, many row groups, and unsupported features
  Tests/FormatsTests/ParquetExpectations.swift
      the exact contents of every small file's string columns

(The nanochat-style text shards are written by the tests themselves, Tests/TestSupport/
ParquetTextWriter.swift, and checked against their source texts in TextShardsTests.swift.)

Usage: python3 Tests/FormatsTests/make_parquet_expectations.py   (from the repository root)
"""
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "parquet")

# ---------------------------------------------------------------------------------------------
# Contents

BASIC = [
    "The Python interpreter is easily extended with new functions.",
    "",
    "héllo wörld — naïve café",
    "日本語のテキスト",
    "emoji: 🙂🚀 and a flag 🇫🇷",
    "line one\nline two\r\nline three\ttabbed",
    "quotes \" and backslash \\ survive",
    "x" * 300,
    "a",
    "null byte \u0000 inside",
] + [f"document number {i}: " + "lorem ipsum " * (i % 7) for i in range(20)]

DICT_VALUES = ["alpha", "beta", "gamma", "", "δέλτα"]
DICTIONARY = [DICT_VALUES[(i * 7 + i // 3) % 5] for i in range(60)]

NULLS = [None if i % 3 == 1 or i in (0, 17) else f"row {i} " + "ü" * (i % 5) for i in range(40)]
NULLS_DICT = [None if i % 4 == 0 else DICT_VALUES[i % 5] for i in range(45)]
ALL_NULL = [None] * 9

MANY = [f"group text {i} " + "z" * (i % 11) for i in range(50)]
WIDE = [None if i % 17 == 5 else f"w{(i * 7919) % 700}" for i in range(2000)]
FALLBACK = [f"unique value number {i} " + "q" * (i % 13) for i in range(300)]


def table(column, values, nullable=True):
    return pa.table({column: pa.array(values, type=pa.string())}).cast(
        pa.schema([pa.field(column, pa.string(), nullable=nullable)]))


def write(name, tbl, **options):
    path = os.path.join(OUT_DIR, name)
    pq.write_table(tbl, path, **options)
    return path


def make_files():
    os.makedirs(OUT_DIR, exist_ok=True)
    files = []  # (file name, column, values, row groups, description)

    def add(name, column, values, tbl, description, **options):
        path = write(name, tbl, **options)
        groups = pq.ParquetFile(path).metadata.num_row_groups
        assert pq.read_table(path).column(column).to_pylist() == values, name
        files.append((name, column, values, groups, description))

    plain = dict(use_dictionary=False)
    add("uncompressed.parquet", "text", BASIC, table("text", BASIC), "UNCOMPRESSED, PLAIN, page v1",
        compression="none", **plain)
    add("snappy.parquet", "text", BASIC, table("text", BASIC), "SNAPPY, PLAIN, page v1",
        compression="snappy", **plain)
    add("gzip.parquet", "text", BASIC, table("text", BASIC), "GZIP, PLAIN, page v1",
        compression="gzip", **plain)
    add("zstd_v2.parquet", "text", BASIC, table("text", BASIC), "ZSTD, PLAIN, page v2",
        compression="zstd", data_page_version="2.0", **plain)
    add("dictionary.parquet", "text", DICTIONARY, table("text", DICTIONARY), "SNAPPY, RLE_DICTIONARY",
        compression="snappy", use_dictionary=True)
    add("dictionary_v1.parquet", "text", DICTIONARY, table("text", DICTIONARY),
        "GZIP, PLAIN_DICTIONARY (format 1.0)", compression="gzip", use_dictionary=True, version="1.0")
    add("dictionary_fallback.parquet", "text", FALLBACK, table("text", FALLBACK),
        "dictionary pages then PLAIN pages in one chunk (dictionary size limit hit)",
        compression="zstd", use_dictionary=True, dictionary_pagesize_limit=512, data_page_size=256,
        write_batch_size=16)
    add("nulls.parquet", "text", NULLS, table("text", NULLS), "optional with nulls, SNAPPY, PLAIN, v1",
        compression="snappy", **plain)
    add("nulls_v2_dictionary.parquet", "text", NULLS_DICT, table("text", NULLS_DICT),
        "optional with nulls, ZSTD, RLE_DICTIONARY, page v2",
        compression="zstd", use_dictionary=True, data_page_version="2.0")
    add("all_null.parquet", "text", ALL_NULL, table("text", ALL_NULL), "every value null",
        compression="none", **plain)
    add("row_groups.parquet", "text", MANY, table("text", MANY, nullable=False),
        "required, 8 row groups of up to 7 rows, several pages per chunk",
        compression="zstd", row_group_size=7, data_page_size=32, write_batch_size=2, **plain)

    add("required_v2.parquet", "text", MANY, table("text", MANY, nullable=False),
        "required, SNAPPY, PLAIN, page v2 (no level bytes)",
        compression="snappy", data_page_version="2.0", **plain)
    add("dictionary_wide.parquet", "text", WIDE, table("text", WIDE),
        "700-entry dictionary (10-bit indices) with nulls, UNCOMPRESSED, several v1 pages",
        compression="none", use_dictionary=True, data_page_size=512, write_batch_size=64)

    # Several columns: pick by name; an int column and a list column give errors.
    titles = [f"title {i}" for i in range(len(MANY))]
    multi = pa.table({
        "id": pa.array(range(len(MANY)), type=pa.int64()),
        "title": pa.array(titles, type=pa.string()),
        "text": pa.array(MANY, type=pa.string()),
        "tags": pa.array([["a", "b"][: i % 3] for i in range(len(MANY))], type=pa.list_(pa.string())),
    })
    path = write("columns.parquet", multi, compression="snappy")
    files.append(("columns.parquet", "title", titles, 1, "four columns: id (int64), title, text, tags (list)"))
    files.append(("columns.parquet", "text", MANY, 1, "four columns: id (int64), title, text, tags (list)"))

    # Unsupported features (the reader must say so, naming codec or encoding).
    write("lz4.parquet", table("text", BASIC), compression="lz4", **plain)
    write("delta.parquet", table("text", BASIC), compression="none", use_dictionary=False,
          column_encoding={"text": "DELTA_BYTE_ARRAY"})
    return files


# ---------------------------------------------------------------------------------------------
# Swift output

def swift_string(value):
    if value is None:
        return "nil"
    out = []
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("\\u{%x}" % ord(ch))
    return '"' + "".join(out) + '"'


def swift_array(values):
    lines = ",\n".join("        " + swift_string(v) for v in values)
    return "[\n" + lines + ",\n    ]"


def main():
    files = make_files()
    out = [
        "// Generated by Tests/FormatsTests/make_parquet_expectations.py with pyarrow "
        + pa.__version__ + "; do not edit.",
        "// Regenerate (and re-commit parquet/*.parquet) with: python3 Tests/FormatsTests/make_parquet_expectations.py",
        "",
        "/// A small parquet test file and the exact contents pyarrow reads from one of its columns.",
        "struct ParquetSmallFileExpectation: Sendable {",
        "    var file: String",
        "    var column: String",
        "    var rowGroups: Int",
        "    var what: String",
        "    var values: [String?]",
        "}",
        "",
        "enum ParquetExpectations {",
    ]
    for i, (name, column, values, groups, what) in enumerate(files):
        out.append(f"    static let values{i}: [String?] = {swift_array(values)}")
        out.append("")
    out.append("    static let smallFiles: [ParquetSmallFileExpectation] = [")
    for i, (name, column, values, groups, what) in enumerate(files):
        out.append(f"        ParquetSmallFileExpectation(file: \"{name}\", column: \"{column}\", rowGroups: {groups}, "
                   f"what: {swift_string(what)}, values: values{i}),")
    out.append("    ]")
    out.append("}")
    path = os.path.join(HERE, "ParquetExpectations.swift")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    for name in sorted(os.listdir(OUT_DIR)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT_DIR, name))} bytes")


if __name__ == "__main__":
    sys.exit(main())
