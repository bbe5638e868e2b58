#!/usr/bin/env python3
"""Writes the seed inputs of test/fuzz/corpus/TARGET/seed-* (run from anywhere; rewrites them).

Seeds are small, well-formed examples of what each parser meets (fuzz_TARGET.cpp says how an
input is laid out), so that fuzzing starts from the interesting paths. Inputs that once crashed a
target are kept beside them as crash-* files and are not touched here.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
VERSION = "187a4c5e3b2d1f00-0123456789abcdef"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def http_response(status, reason, headers, body=b"", length=True):
    head = f"HTTP/1.1 {status} {reason}\r\nServer: MochiWeb/1.1 WebMachine/1.11.1\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def pipeline(methods, requests, chunk, wire):
    return bytes([methods, requests - 1, chunk - 1]) + wire


# ---- pipeline_decoder
obj_headers = [
    ("X-Riak-Vclock", "a85hYGBgzGDKBVIcypz/fgaUHjmdwZTImMfK0Ly9hS8LAA=="),
    ("Vary", "Accept-Encoding"),
    ("Link", '</buckets/b>; rel="up"'),
    ("Last-Modified", "Wed, 25 Nov 2026 19:00:00 GMT"),
    ("ETag", '"6bYxZ"'),
    ("X-Riak-Meta-Riakfs-Size", "11"),
    ("X-Riak-Index-Path_bin", "a%2Fb, c"),
    ("Content-Type", "application/octet-stream"),
]
get200 = http_response(200, "OK", obj_headers, b"hello world")
multipart_body = (
    b"\r\n--sib\r\nContent-Type: text/plain\r\nEtag: 1a\r\n"
    b"Last-Modified: Wed, 25 Nov 2026 19:00:00 GMT\r\nX-Riak-Meta-A: 1\r\n\r\none"
    b"\r\n--sib\r\nContent-Type: text/plain\r\nEtag: 2b\r\nX-Riak-Deleted: true\r\n\r\n"
    b"\r\n--sib--\r\n"
)
siblings300 = http_response(
    300, "Multiple Choices",
    [("X-Riak-Vclock", "a85hYGBg"), ("Content-Type", "multipart/mixed; boundary=sib")],
    multipart_body)
text300 = http_response(300, "Multiple Choices",
                        [("X-Riak-Vclock", "a85hYGBg"), ("Content-Type", "text/plain")],
                        b"Siblings:\n1a\n2b\n")
chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
           b"\r\n5\r\n{\"key\r\nb\r\ns\":[\"a\",\"b\"]}\r\n0\r\n\r\n")
write("pipeline_decoder", "get200", pipeline(0, 1, 256, get200))
write("pipeline_decoder", "siblings-multipart", pipeline(0, 1, 64, siblings300))
write("pipeline_decoder", "siblings-text", pipeline(0, 1, 7, text300))
write("pipeline_decoder", "chunked", pipeline(0, 1, 3, chunked))
write("pipeline_decoder", "head-then-404", pipeline(
    1, 2, 256,
    http_response(200, "OK", [("Content-Type", "text/plain"), ("Content-Length", "5")],
                  length=False)
    + http_response(404, "Object Not Found", [("Content-Type", "text/plain")], b"not found\n")))
write("pipeline_decoder", "continue-204", pipeline(
    0, 1, 256, b"HTTP/1.1 100 Continue\r\n\r\n" + http_response(204, "No Content", [])))
write("pipeline_decoder", "eof-delimited", pipeline(
    0, 1, 256, b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nOK"))
write("pipeline_decoder", "set-fetch", pipeline(0, 1, 256, http_response(
    200, "OK", [("Content-Type", "application/json")],
    b'{"type":"set","value":["a","b"],"context":"g2wAAAAB"}')))
write("pipeline_decoder", "too-large", pipeline(0, 3, 256, http_response(
    500, "Internal Server Error", [("Content-Type", "text/plain")], b"Error:\n{too_large,60000000}\n")
    + http_response(503, "Service Unavailable", [], b"request timed out\n")
    + get200))

# ---- multipart
write("multipart", "siblings", b"multipart/mixed; boundary=sib\n" + multipart_body)
write("multipart", "quoted-boundary", b'multipart/mixed; boundary="a b"\n'
      b"preamble\n--a b\nContent-Type: text/plain\n\nx\n--a b--\n")
write("multipart", "index-stream", b"multipart/mixed; boundary=XYZ\n"
      b"\r\n--XYZ\r\nContent-Type: application/json\r\n\r\n{\"keys\":[\"k1\"]}"
      b"\r\n--XYZ\r\nContent-Type: application/json\r\n\r\n{\"results\":[{\"t\":\"k2\"}],"
      b"\"continuation\":\"g2\"}\r\n--XYZ--\r\n")
write("multipart", "sibling-list", b"text/plain\nSiblings:\r\n1a\r\n2b\r\n")

# ---- names
for name, data in {
    "percent": b"50% off\xff.txt",
    "utf8": "caf\u00e9/na\u00efve".encode(),
    "escaped": b"caf%E9%25",
    "plus-slash": b"a+b%2Fc/./..",
    "target": b"/types/t/buckets/b%20x/keys/k+1?r=2&w=quorum;returnbody=true#frag",
    "reserved": b".riakfs/chunks/x",
    "controls": b"tab\there\r\nnul-free",
}.items():
    write("names", name, data)

# ---- listings: selector, chunk size - 1, body
def listing(which, chunk, body):
    return bytes([which, chunk - 1]) + (body if isinstance(body, bytes) else body.encode())

write("listings", "keys", listing(0, 1, json.dumps({"keys": ["a", "b%2F", "caf\u00e9"]})))
write("listings", "key-stream", listing(1, 5, '{"keys":["a"]}{"keys":[]}\n{"keys":["b","c"]}'))
write("listings", "key-stream-error", listing(1, 3, '{"keys":["a"]}{"error":"timeout"}'))
write("listings", "index", listing(2, 1, '{"keys":["k1","k2"],"continuation":"g2gCbQ"}'))
write("listings", "index-terms", listing(2, 1, '{"results":[{"10":"k1"},{"11":"k2"}]}'))
write("listings", "props", listing(3, 1, json.dumps({"props": {
    "n_val": 3, "allow_mult": True, "last_write_wins": False, "dvv_enabled": True,
    "r": "quorum", "w": 2, "pw": 0, "datatype": "set", "young_vclock": 20}})))
write("listings", "stats", listing(4, 1, json.dumps({
    "riak_kv_version": "3.2.0", "storage_backend": "riak_kv_eleveldb_backend",
    "ring_members": ["riak@127.0.0.1"], "connected_nodes": [],
    "node_get_fsm_time_95": 1234.5})))
write("listings", "set", listing(5, 1, '{"type":"set","value":["a","b"],"context":"g2wAAAAB"}'))
write("listings", "set-update", listing(6, 1, '{"add_all":["x"],"remove":"y","context":"c"}'))
write("listings", "json-stream", listing(7, 2, '{"a":"}{"} {"b":[1,{"c":"\\""}]}'))

# ---- devnode_request: selector (bit 0 admin, bit 1 compat 3.0), then requests
def req(method, target, headers=(), body=b""):
    out = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for k, v in headers:
        out += f"{k}: {v}\r\n"
    if body or method in ("PUT", "POST"):
        out += f"Content-Length: {len(body)}\r\n"
    return out.encode() + b"\r\n" + body

put = req("PUT", "/types/default/buckets/b/keys/k?returnbody=true",
          [("Content-Type", "text/plain"), ("X-Riak-Meta-Riakfs-Size", "5"),
           ("X-Riak-Index-Path_bin", "a%2Fb"), ("X-Riak-Index-Size_int", "5")], b"hello")
write("devnode_request", "objects", bytes([0]) + put
      + req("GET", "/types/default/buckets/b/keys/k", [("Accept", "multipart/mixed, */*;q=0.5")])
      + req("HEAD", "/buckets/b/keys/k")
      + req("DELETE", "/buckets/b/keys/k", [("X-Riak-Vclock", "a85hYGBg")])
      + req("GET", "/buckets/b/keys/k?deletedvclock=true"))
write("devnode_request", "listings", bytes([0]) + put
      + req("GET", "/buckets/b/keys?keys=true")
      + req("GET", "/buckets/b/keys?keys=stream")
      + req("GET", "/types/default/buckets?buckets=true")
      + req("GET", "/buckets/b/index/path_bin/a/z?max_results=1&return_terms=true")
      + req("GET", "/buckets/b/index/$bucket/_?stream=true")
      + req("GET", "/buckets/b/index/size_int/1/10?term_regex=.*"))
write("devnode_request", "props", bytes([0])
      + req("PUT", "/types/mult/buckets/b/props", [("Content-Type", "application/json")],
            b'{"props":{"allow_mult":true,"n_val":3}}')
      + req("GET", "/types/mult/buckets/b/props")
      + req("GET", "/types/sets/props")
      + req("DELETE", "/buckets/b/props"))
write("devnode_request", "sets", bytes([0])
      + req("POST", "/types/sets/buckets/s/datatypes/k?returnbody=true",
            [("Content-Type", "application/json")], b'{"add_all":["a","b"]}')
      + req("GET", "/types/sets/buckets/s/datatypes/k")
      + req("POST", "/types/sets/buckets/s/datatypes/k", [("Content-Type", "application/json")],
            b'{"remove":"a","context":"x"}'))
write("devnode_request", "misc", bytes([2]) + req("GET", "/ping") + req("GET", "/stats")
      + req("GET", "/riak/b/k") + b"PUT /buckets/b/keys/c HTTP/1.1\r\nHost: x\r\n"
      b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      + req("POST", "/buckets/b/keys", [("Content-Type", "text/plain")], b"server key")
      + req("PUT", "/buckets/b/keys/big", [("Content-Type", "text/plain"),
                                            ("Content-Length", "99999999")]))
write("devnode_request", "admin", bytes([1])
      + req("PUT", "/devnode/types/t2", [("Content-Type", "application/json")],
            b'{"props":{"datatype":"set"}}')
      + req("GET", "/devnode/types/t2")
      + req("POST", "/devnode/faults", [("Content-Type", "application/json")],
            b'{"route_latency_ms":{"object":200},"error_rate":0.1,"methods":["PUT"],'
            b'"routes":["object"],"slow_body_bps":100,"reset_rate":0.5,"error_status":500}'))

# ---- mount_options: selector (bit 0: settings file), then NUL-separated arguments
def args(*a):
    return b"\0" + b"\0".join(x.encode() for x in a)

write("mount_options", "riak", args(
    "/srv/data", "/srv/data", "-f", "-o",
    "riak=http://127.0.0.1:8098,http://[::1]:8099,mode=move,chunk_size=4M,cache_size=64M,"
    "bucket=b,bucket_type=t,state_dir=/var/lib/x,allow_other,drain=on,drain_rate=50M,"
    "drain_files=200,drain_order=atime,metrics=127.0.0.1:0,threads=4,blocking_threads=3"))
write("mount_options", "passthrough", args(
    "src", "mnt", "-d", "-s", "-o", "cache=never,attr_timeout=0.5,entry_timeout=2,"
    "negative_timeout=0,ro,fsname=x", "-o", "config=/etc/riakfs/layout.json,restore"))
write("mount_options", "help", args("--help"))
write("mount_options", "settings", b"\x01# comment\nlog_level = debug\n\ndrain_rate = 512K\n"
      b"drain_files=10   \n")

# ---- mapping: config JSON, NUL, paths
mapping = json.dumps({
    "rules": [
        {"path": "/{m}/images/{f}", "bucket": "IMG_{m}", "key": "{f}"},
        {"path": "/logs/{rest**}", "bucket": "logs", "key": "{rest}", "type": "mytype"},
        {"path": "/img_{f}.jpg", "bucket": "jpg", "key": "x{f}y"},
        {"path": "/static", "bucket": "s", "key": "static"},
    ],
    "namespace": {"bucket": "riakfs-ns", "type": ""},
})
write("mapping", "rules", mapping.encode() + b"\0" + b"\0".join([
    b"a/images/b.png", b"logs/2026/11/x.log", b"img_cat.jpg", b"static", b"other",
    b"a//b", b"", b"logs/.riakfs/x"]))
write("mapping", "rest-only", b'{"rules":[{"path":"/{all**}","bucket":"b","key":"{all}"}]}'
      b"\0a\0a/b/c\0.riakfs/chunk")

# ---- state_records: selector, then the record
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def zigzag(v):
    return varint((v << 1) ^ (v >> 63) if v >= 0 else ((-v) << 1) - 1)

def s(x):
    x = x.encode() if isinstance(x, str) else x
    return varint(len(x)) + x

file_state = (bytes([1, 3]) + s(VERSION) + s(SHA) + s("a85hYGBg") + s("") + s("riakfs")
              + s("dir/file.txt") + varint(12) + zigzag(1764097200123456789)
              + zigzag(-5) + varint(2049) + varint(131074) + varint(0) + s(""))
write("state_records", "file-state", bytes([0]) + file_state)
write("state_records", "file-state-retry", bytes([0]) + bytes([1, 0]) + s("") + s("") + s("")
      + s("t") + s("b") + s("k\xff") + varint(0) + zigzag(0) + zigzag(0) + varint(0)
      + varint(0) + varint(3) + s("EIO: connection reset"))
write("state_records", "identity", bytes([1, 1]) + s("/srv/data") + s("riakfs:default:{}"))
write("state_records", "marker", bytes([2, 1]) + s(VERSION) + s(SHA) + s("") + s("riakfs")
      + s("a/b") + varint(1 << 40) + zigzag(1764097200123456789))
write("state_records", "drain", bytes([3]) + json.dumps({
    "format": 1, "state": "running", "pass": 2,
    "total": {"files": 10, "bytes": 1000}, "migrated": {"files": 5, "bytes": 500},
    "released": {"files": 1, "bytes": 10}, "failed": {"files": 0, "bytes": 0},
    "last_error": ""}).encode())
write("state_records", "parts", bytes([4]) + b"3")

# ---- layout_records: selector, then the value (meta: NUL-separated name, value pairs)
write("layout_records", "manifest", bytes([0]) + json.dumps({
    "format": "riakfs-manifest/1", "size": 2621440, "chunk_size": 1048576, "sha256": SHA,
    "version": VERSION, "chunk_prefix": ".riakfs/chunks/" + VERSION + "/",
    "chunks": [SHA, None, SHA], "crc32": [3924506613, None, 1274837690]}).encode())
write("layout_records", "manifest-2", bytes([0]) + json.dumps({
    "format": "riakfs-manifest/2", "size": 2621440, "chunk_size": 1048576, "sha256": SHA,
    "version": VERSION, "chunk_prefix": ".riakfs/chunks/" + VERSION + "/",
    "crc32": [3924506613, None, 1274837690]}).encode())
write("layout_records", "dir-record", bytes([1]) + json.dumps({
    "format": "riakfs-dir/1", "parts": 2, "entries": {
        "file.txt": {"type": "reg", "mode": 420, "uid": 0, "gid": 0, "mtime_ns": 1,
                     "ctime_ns": 2, "atime_ns": 3, "size": 12, "nlink": 2, "inode": "h1",
                     "xattrs": {"user.a": "b%00c"}},
        "sub": {"type": "dir", "mode": 493, "uid": 1000, "gid": 1000, "mtime_ns": -1,
                "ctime_ns": 0, "atime_ns": 0, "size": 4096, "nlink": 2},
        "link%FF": {"type": "lnk", "mode": 511, "uid": 0, "gid": 0, "mtime_ns": 0,
                    "ctime_ns": 0, "atime_ns": 0, "size": 4, "nlink": 1, "target": "file.txt"},
        "dev": {"type": "chr", "mode": 420, "uid": 0, "gid": 0, "mtime_ns": 0, "ctime_ns": 0,
                "atime_ns": 0, "size": 0, "nlink": 1, "rdev": 259},
    }}).encode())
write("layout_records", "meta", bytes([2]) + b"\0".join(x.encode() for x in [
    "riakfs-mode", "100644", "riakfs-uid", "0", "riakfs-gid", "0",
    "riakfs-mtime", "1764097200123456789", "riakfs-ctime", "1764097200123456789",
    "riakfs-atime", "-1", "riakfs-size", "12", "riakfs-sha256", SHA,
    "riakfs-version", VERSION, "riakfs-path", "dir/caf%C3%A9.txt", "riakfs-kind", "manifest",
    "other-client", "x"]))
