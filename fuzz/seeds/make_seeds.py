#!/usr/bin/env python3
"""Writes the hand-made seed corpora of the dataset, tokenizer, image_header and demo_request fuzz
targets into fuzz/seeds/<target>/ (run from anywhere; rerunning rewrites the same files).

Everything here is written for the fuzzer, no data from ../shared. The image seeds are PNGs built
below with zlib; they are not committed (git keeps no image files): run this before fuzzing.
"""
import os
import struct
import zlib

SEEDS = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(SEEDS, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(SEEDS, target, name), "wb") as f:
        f.write(data)


# ---- dataset: items.jsonl, "\n--\n", interactions.csv -------------------------------------------
SEP = "\n--\n"
ITEMS = "\n".join([
    '{"item_id": "a", "title": "Red shoe", "description": "A shoe", "image": "images/a.jpg", "year": 1995}',
    '{"item_id": "b", "title": "Blue shoe", "image": null, "genres": ["x", "y"]}',
    '{"item_id": "c", "description": "Only a description", "image": ""}',
])
write("dataset", "valid", ITEMS + SEP + "user_id,item_id,timestamp,rating\n"
      "u1,a,874965478,4\nu1,b,874965480,5\nu2,c,880000000,\nu2,a,880000000,3.5\nu2,b,893286638,1\n")
write("dataset", "ordinals_extra_columns", ITEMS + SEP + "item_id,extra,timestamp,user_id\n"
      "b,x,5,u2\na,\"quoted, with comma\",3,u1\nc,x,3,u2\na,x,5,u2\nb,x,1,u1\n")
write("dataset", "problems", "\ufeff" + "\r\n".join([
    '{"item_id": "a", "title": "T"}',
    '{"item_id": "a", "title": "again"}',
    '{"item_id": 5, "title": "numeric"}',
    '{"item_id": "", "title": "empty"}',
    '{"item_id": "d1", "item_id": "d2"}',
    '[1, 2]',
    '{not json',
    '',
    '{"item_id": "e", "title": 7, "description": null, "image": 3}',
    '{"item_id": "f"}',
]) + SEP + "user_id,item_id,timestamp,rating\r\n"
      "u,a,1,five\nu,zz,2,\n,a,3,\nu,a,,\nu,a,nan,\nu,a,1e300,1e300\nu,a\nu,\"a\nb\",4,\n"
      "v,e,2,1\nv,f,1,2\nw,\"a,5,1\n")
write("dataset", "no_header", ITEMS + SEP + "u1,a,1\nu1,b,2\n")
write("dataset", "missing_column", ITEMS + SEP + "user_id,item,timestamp\nu1,a,1\n")
write("dataset", "items_only", ITEMS + "\n")
# The smoke run's first finding (minimised): a number beyond f64, then non-ASCII outside any string.
write("dataset", "crash_number_beyond_f64_then_non_ascii", "1e616\u00ed" + SEP + "user_id,item_id,timestamp\n")
write("dataset", "unicode", '{"item_id": "\u00e9\u4e2d", "title": "caf\u00e9 \u4e2d\u6587"}\n'
      '{"item_id": "\\u0000x", "title": "nul id"}' + SEP + "user_id,item_id,timestamp\n"
      "\u00fc,\u00e9\u4e2d,-1e308\n\u00fc,\u00e9\u4e2d,1e308\n")

# ---- tokenizer: text -------------------------------------------------------------------------
write("tokenizer", "title", "Red running shoes for the blue runner, size 10 (unaffable!)")
write("tokenizer", "description", "A cafe-style shoe with a rubber sole. Ideal for running and walking; "
      "made in 2019 by O'Neill & Sons. \u00bfQu\u00e9 tal? \u00c9t\u00e9 \u2014 na\u00efve co\u00f6perate.\n")
write("tokenizer", "added_tokens", "[CLS] a [SEP]b[SEP][MASK][PAD][UNK][SE[SEP[ [CLS][[SEP]]")
write("tokenizer", "unicode", "\u4e2d\u6587\u5b57 \u0130\u0307 \u03a3\u03c3\u03c2 \u00df \ufb01 "
      "\u200b\u00a0\u0085\u2028 \t\r\n \u0000\ufffd \U0001f600 e\u0301 \u0915\u094d\u0937")
write("tokenizer", "long_word", "a" + "b" * 99 + " " + "x" * 150 + " " + "ab" * 60 + ".")

# ---- image_header: PNGs ----------------------------------------------------------------------
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width, height, depth, colour, rows, interlace=0, extra=b"", idat=None):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    data = zlib.compress(rows) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", data) + chunk(b"IEND", b"")


write("image_header", "rgb_3x2.png", png(3, 2, 8, 2, b"".join(b"\0" + bytes(range(y, y + 9)) for y in range(2))))
write("image_header", "gray16_2x2.png", png(2, 2, 16, 0, b"\0\x12\x34\xff\xff" * 2))
write("image_header", "graya_2x1.png", png(2, 1, 8, 4, b"\0\x10\x80\xf0\x00"))
write("image_header", "rgba_1x1.png", png(1, 1, 8, 6, b"\0\x01\x02\x03\x04"))
write("image_header", "palette_2x2.png", png(2, 2, 1, 3, b"\0\x80\0\x40", extra=chunk(b"PLTE", b"\xff\0\0\0\0\xff")))
write("image_header", "interlaced_4x4.png", png(4, 4, 8, 0, b"\0\x11" + b"\0\x22" + b"\0\x33\x44" + b"\0\x55\x66"
                                                + b"\0\x77\x88\x99\xaa" + b"\0\xbb\xcc" + b"\0" + bytes(4) * 2, interlace=1))
# A header under the pixel limit (9000×9000) whose pixel data is cut short, and one over it.
write("image_header", "big_truncated.png", png(9000, 9000, 8, 0, b"", idat=zlib.compress(bytes(9001 * 4))[:40]))
write("image_header", "over_limit.png", png(20000, 20000, 8, 0, b"\0" * 20001))

# ---- demo_request: request heads -------------------------------------------------------------
HOST = "Host: 127.0.0.1:8080\r\n"
for name, head in [
    ("index", "GET /demo/ HTTP/1.1\r\n" + HOST + "User-Agent: x\r\n\r\n"),
    ("bundle", "GET /bundle/manifest.json HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"),
    ("alias_query", "HEAD /bundle/alias.json?v=1#top HTTP/1.1\nhost: [::1]:8080\n\n"),
    ("inside_link", "GET /demo/inside.html HTTP/1.1\r\n" + HOST + "\r\n"),
    ("leak_link", "GET /bundle/leak.png HTTP/1.1\r\n" + HOST + "\r\n"),
    ("leak_abs_link", "GET /leak.txt HTTP/1.1\r\n" + HOST + "\r\n"),
    ("up_link", "GET /up/secret.txt HTTP/1.1\r\n" + HOST + "\r\n"),
    ("parent_link", "GET /bundle/parent/secret.txt HTTP/1.1\r\n" + HOST + "\r\n"),
    ("etc_link", "GET /data/images/etc/passwd HTTP/1.1\r\n" + HOST + "\r\n"),
    ("cross_mount_link", "GET /data/www/demo/index.html HTTP/1.1\r\n" + HOST + "\r\n"),
    ("traversal", "GET /%2e%2e/secret.txt HTTP/1.1\r\n" + HOST + "\r\n"),
    ("traversal_mixed", "GET /bundle/..%2f..%2fsecret.txt HTTP/1.1\r\n" + HOST + "\r\n"),
    ("hidden", "GET /.hidden HTTP/1.1\r\n" + HOST + "\r\n"),
    ("fifo", "GET /demo/fifo HTTP/1.1\r\n" + HOST + "\r\n"),
    ("missing_mount", "GET /missing/x HTTP/1.1\r\n" + HOST + "\r\n"),
    ("root_redirect", "GET / HTTP/1.1\r\n" + HOST + "\r\n"),
    ("post", "POST /demo/ HTTP/1.1\r\n" + HOST + "Content-Length: 0\r\n\r\n"),
    ("foreign_host", "GET /demo/ HTTP/1.1\r\nHost: evil.example:8080\r\n\r\n"),
    ("two_hosts", "GET /demo/ HTTP/1.1\r\n" + HOST + HOST + "\r\n"),
    ("no_host", "GET /demo/ HTTP/1.0\r\n\r\n"),
    ("bare_lf_and_body", "GET /pkg/omakase_bg.wasm HTTP/1.1\n" + "Host: 127.0.0.1:8080\n\nbody"),
]:
    write("demo_request", name, head)
