#!/usr/bin/env python3
"""Writes the interop fixtures: Parquet and Arrow IPC files made by pyarrow,
which the Go tests in schemas/ read (TestInterop*).

Rerun (needs pyarrow; the files are committed, so tests do not):
    python3 -m venv /tmp/pa && /tmp/pa/bin/pip install pyarrow
    cd testdata/schemas/interop && /tmp/pa/bin/python make_interop.py
"""
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

n = 300
docs = pa.table({
    "id": [f"doc-{i}" for i in range(n)],
    "text": [("word%d " % (i % 50)) * (1 + i % 30) for i in range(n)],
    "source": [["brown", "sotu", "go"][i % 3] for i in range(n)],
    "score": [i * 0.5 for i in range(n)],
    "tags": [[str(i), "x"] if i % 2 else None for i in range(n)],
    "num": pa.array([i if i % 7 else None for i in range(n)], pa.int64()),
})
# Several row groups, small pages, a page index, dictionary pages,
# statistics; data page v2 for zstd, v1 for snappy.
pq.write_table(docs, "pyarrow-zstd.parquet", compression="zstd", row_group_size=128,
               data_page_size=1024, write_page_index=True, data_page_version="2.0")
pq.write_table(docs, "pyarrow-snappy.parquet", compression="snappy", row_group_size=128,
               data_page_size=1024, data_page_version="1.0")
pq.write_table(docs.slice(0, 10), "pyarrow-lz4.parquet", compression="lz4")

schema = pa.schema([
    ("id", pa.string(), False), ("text", pa.string(), False), ("meta", pa.string()),
    ("origin_topic", pa.string(), False), ("origin_partition", pa.int32(), False),
    ("origin_offset", pa.int64(), False), ("origin_row", pa.int32(), False),
], metadata={"domainflow.kind": "document", "domainflow.schema_version": "1"})
batch = pa.record_batch([
    pa.array(["a", "b"]), pa.array(["hello", "wörld"]), pa.array([None, '{"k":1}']),
    pa.array(["docs.raw", "docs.raw"]), pa.array([0, 1], pa.int32()),
    pa.array([5, 6], pa.int64()), pa.array([0, 0], pa.int32()),
], schema=schema)
with ipc.new_stream("pyarrow-documents.arrows", schema) as w:
    w.write_batch(batch)
    w.write_batch(batch)
with ipc.new_stream("pyarrow-documents-zstd.arrows", schema,
                    options=ipc.IpcWriteOptions(compression="zstd")) as w:
    w.write_batch(batch)
with ipc.new_file("pyarrow-documents.arrow", schema) as w:
    w.write_batch(batch)
