#!/usr/bin/env python3
"""The heap two massif detailed snapshots differ by, per connection, by allocating site.

Usage: massif-diff.py BEFORE AFTER N   (massif.sh makes the snapshots; N connections opened
between them). Prints the bytes per connection each site added (requested sizes: massif.sh runs
massif with --heap-admin=0), the owner being the first frames in weir, rustls, ring or aws-lc.
"""
import collections
import re
import sys

NODE = re.compile(r"^( *)n(\d+): (\d+) (.*)$")
OWNER = re.compile(r"weir::|rustls::|ring::|aws_lc|hashbrown")


def leaves(path):
    """Bytes of each leaf of the snapshot's heap tree, keyed by its stack (outermost last)."""
    out = collections.Counter()
    stack = []
    for line in open(path):
        m = NODE.match(line.rstrip("\n"))
        if not m:
            continue
        depth, kids, size, desc = len(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
        fn = re.sub(r"^0x[0-9A-F]+: ", "", desc)
        fn = re.sub(r" \((?:in )?[^()]*\)$", "", fn)
        del stack[depth:]
        stack.append(fn)
        if kids == 0 and size > 0:
            out[tuple(stack[1:])] += size
    return out


def main():
    before, after, n = leaves(sys.argv[1]), leaves(sys.argv[2]), int(sys.argv[3])
    by_owner = collections.Counter()
    for k in set(before) | set(after):
        d = after[k] - before[k]
        if d:
            frames = [f for f in k if OWNER.search(f)][:3]
            by_owner[" < ".join(f[:90] for f in frames) or k[0][:90]] += d
    total = sum(by_owner.values())
    print(f"{total / n:9.1f} B per connection in all ({n} connections)")
    for owner, d in sorted(by_owner.items(), key=lambda kv: -abs(kv[1])):
        if abs(d) / n >= 0.5:
            print(f"{d / n:9.1f}  {owner}")


if __name__ == "__main__":
    main()
