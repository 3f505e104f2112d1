#!/usr/bin/env python3
"""Sorts the samples of a `perf record --call-graph dwarf` profile of
flagnet-bench into the parts of a request, and prints CPU microseconds per
call for each part.

    perf script -i perf.data | python3 categorize.py --hz 499 --calls N

`--calls` is how many calls the profiled window completed (calls/s printed
by `flagnet-bench profile` times the seconds recorded). Each sample is
charged to the first rule below that matches any frame of its stack, so a
socket write made by rustls counts as socket I/O, and SQLite's own system
calls count as SQLite. See docs/performance.md.
"""

import argparse
import collections
import re
import sys

# (part, pattern over one frame's symbol), first match wins
RULES = [
    ("client side (the load generator)", re.compile(r"flagnet_bench::|tonic::client|h2::client|hyper::proto::h2::client|hyper_util::client")),
    ("audit log (records, Merkle tree, SQLite writer, commit)", re.compile(r"flagnet_audit::")),
    ("policy decision", re.compile(r"flagnet_policy::|casbin")),
    ("store: SQLite (queries and their system calls)", re.compile(r"sqlite3|unixRead|unixWrite|unixLock|unixSync")),
    ("store: unseal bodies (XChaCha20-Poly1305)", re.compile(r"flagnet_store::seal|chacha20::|poly1305::")),
    ("store: JSON of sealed bodies", re.compile(r"serde_json")),
    ("phone normalisation (phonenumber, regex)", re.compile(r"phonenumber|regex_automata|regex_cache|regex::")),
    ("spawn_blocking hand-off", re.compile(r"blocking::pool::Spawner|spawn_blocking")),
    ("flagnet handler (rest of the call chain, tokens, conversions)", re.compile(r"flagnet_server::(?!incoming)|flagnet_core::|flagnet_store::")),
    ("socket I/O (kernel TCP)", re.compile(r"tcp_sendmsg|tcp_recvmsg|sock_write_iter|sock_read_iter|__sys_sendmsg|__sys_recvmsg")),
    ("TLS (rustls, ring)", re.compile(r"rustls|ring::|ring_core")),
    ("HTTP/2 and gRPC framing (h2, hyper, tonic, prost)", re.compile(r"h2::|hyper|tonic::|prost::|tower::|axum::")),
    ("thread park and wake (futex, scheduler)", re.compile(r"futex|__schedule|finish_task_switch|try_to_wake_up|park")),
    ("I/O driver (epoll)", re.compile(r"epoll")),
    ("allocator", re.compile(r"malloc|free|realloc|_int_")),
]


def samples(stream):
    stack = []
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                yield stack
            stack = []
            continue
        if line.startswith("\t") or line.startswith(" "):
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                stack.append(parts[1])
    if stack:
        yield stack


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hz", type=float, required=True, help="perf record -F")
    parser.add_argument("--calls", type=float, required=True, help="calls completed while recording")
    arguments = parser.parse_args()
    totals = collections.Counter()
    count = 0
    for stack in samples(sys.stdin):
        count += 1
        for part, pattern in RULES:
            if any(pattern.search(frame) for frame in stack):
                totals[part] += 1
                break
        else:
            totals["other"] += 1
    micros_per_sample = 1e6 / arguments.hz
    print(f"{count} samples, {count * micros_per_sample / arguments.calls:.1f} CPU µs per call in all")
    for part, hits in totals.most_common():
        per_call = hits * micros_per_sample / arguments.calls
        print(f"{per_call:8.1f} µs/call {100.0 * hits / count:5.1f}%  {part}")


if __name__ == "__main__":
    main()
