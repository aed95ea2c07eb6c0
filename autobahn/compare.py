#!/usr/bin/env python3
"""Reduce an Autobahn|Testsuite report to per-case verdicts and compare it with an expected file.

wstest writes OUTDIR/index.json as {agent: {case_id: {"behavior": ..., "behaviorClose": ..., ...}}}.
This keeps {case_id: {"behavior": ..., "behaviorClose": ...}} for one agent, sorted by case id
numerically (1.1.2 < 1.1.10 < 10.1.1), and then either

  * writes it to EXPECTED (--update), or
  * compares it with EXPECTED and prints every difference.

Exit status: 0 if the results equal EXPECTED and no case FAILED; 1 on any difference, on any
FAILED case (even one that EXPECTED also lists as FAILED), or with --update if a case FAILED;
2 on usage or input errors. A summary line is printed in every mode, e.g.

  autobahn server: 301 cases: 296 OK, 2 NON-STRICT, 3 INFORMATIONAL, 0 UNIMPLEMENTED, 0 FAILED

Usage: compare.py [--update] [--agent NAME] [--label LABEL] INDEX_JSON EXPECTED_JSON
Python 3 standard library only.
"""

import argparse
import json
import os
import re
import sys
import tempfile

BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
FIELDS = ("behavior", "behaviorClose")


def case_key(case_id):
    """Sort key for '1.1.10'-style ids: numeric components compare as numbers."""
    key = []
    for part in case_id.split("."):
        try:
            key.append((0, int(part), ""))
        except ValueError:
            key.append((1, 0, part))
    return key


def sort_cases(cases):
    return {cid: cases[cid] for cid in sorted(cases, key=case_key)}


def fail(msg):
    print("compare.py: error: %s" % msg, file=sys.stderr)
    sys.exit(2)


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        fail("%s %s does not exist" % (what, path))
    except (OSError, ValueError) as e:
        fail("cannot read %s %s: %s" % (what, path, e))


def reduce_report(index, agent):
    if not isinstance(index, dict) or not index:
        fail("report has no agents")
    if agent is None:
        if len(index) != 1:
            fail("report has several agents (%s); pick one with --agent" % ", ".join(sorted(index)))
        agent = next(iter(index))
    elif agent not in index:
        fail("agent %r not in report (agents: %s)" % (agent, ", ".join(sorted(index))))
    cases = index[agent]
    if not isinstance(cases, dict) or not cases:
        fail("agent %r has no cases in the report" % agent)
    reduced = {}
    for cid, res in cases.items():
        if not isinstance(res, dict):
            fail("case %s: unexpected entry %r" % (cid, res))
        reduced[cid] = {field: res.get(field) for field in FIELDS}
    return agent, sort_cases(reduced)


def summary(label, results):
    counts = {b: 0 for b in BEHAVIORS}
    other = 0
    for res in results.values():
        if res["behavior"] in counts:
            counts[res["behavior"]] += 1
        else:
            other += 1
    parts = ["%d %s" % (counts[b], b) for b in BEHAVIORS]
    if other:
        parts.append("%d other" % other)
    return "%s: %d cases: %s" % (label, len(results), ", ".join(parts))


def failed_cases(results):
    return [cid for cid, res in results.items() if res["behavior"] == "FAILED"]


def interchangeable(exp, act):
    """OK and NON-STRICT with the same close behaviour: both pass. A proxy's timing decides
    between them (whether a valid message before a violation makes its round trip upstream
    before the connection fails), so --accept-nonstrict treats them alike."""
    passing = ("OK", "NON-STRICT")
    return (
        exp.get("behavior") in passing
        and act.get("behavior") in passing
        and exp.get("behaviorClose") == act.get("behaviorClose")
    )


def chosen(expected):
    """The expected cases this run was asked for: those AUTOBAHN_CASES names and
    AUTOBAHN_EXCLUDE does not (JSON lists), when the environment gives them, matched as wstest
    matches them (a pattern with `*` is a regular expression matched at the start of the id, so
    `12.*.1` also takes 12.1.10; one without is an exact id); a case asked for and not run is
    still a difference."""
    cases = json.loads(os.environ.get("AUTOBAHN_CASES") or '["*"]')
    exclude = json.loads(os.environ.get("AUTOBAHN_EXCLUDE") or "[]")
    return {
        cid: res
        for cid, res in expected.items()
        if any(wstest_match(p, cid) for p in cases)
        and not any(wstest_match(p, cid) for p in exclude)
    }


def wstest_match(pattern, cid):
    """autobahntestsuite's caseset.resolveCasePatternList."""
    if "*" in pattern:
        return re.match(pattern.replace(".", "\\.").replace("*", ".*"), cid) is not None
    return pattern == cid


def diff(expected, actual, accept_nonstrict=False):
    lines = []
    for cid in sorted(set(expected) | set(actual), key=case_key):
        if cid not in actual:
            lines.append("  %-10s missing from the run (expected %s)" % (cid, fmt(expected[cid])))
        elif cid not in expected:
            lines.append("  %-10s not in the expected file (got %s)" % (cid, fmt(actual[cid])))
        else:
            exp = {f: expected[cid].get(f) for f in FIELDS}
            if exp != actual[cid] and not (accept_nonstrict and interchangeable(exp, actual[cid])):
                lines.append("  %-10s expected %s, got %s" % (cid, fmt(exp), fmt(actual[cid])))
    return lines


def fmt(res):
    return "%s/%s" % (res.get("behavior"), res.get("behaviorClose"))


def write_atomic(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".compare-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("index", help="wstest's OUTDIR/index.json")
    ap.add_argument("expected", help="expected-*.json (written with --update)")
    ap.add_argument("--update", action="store_true", help="rewrite EXPECTED from the report")
    ap.add_argument("--agent", help="agent to read (default: the only one in the report)")
    ap.add_argument("--label", default="autobahn", help="prefix of the summary line")
    ap.add_argument(
        "--accept-nonstrict",
        action="store_true",
        help="OK and NON-STRICT (same close behaviour) do not count as a difference",
    )
    args = ap.parse_args()

    agent, actual = reduce_report(load_json(args.index, "report"), args.agent)
    failed = failed_cases(actual)
    status = 0

    if args.update:
        write_atomic(args.expected, actual)
        print("%s: wrote %s (%d cases, agent %s)" % (args.label, args.expected, len(actual), agent))
    else:
        expected = load_json(args.expected, "expected file")
        if not isinstance(expected, dict):
            fail("expected file %s is not a JSON object" % args.expected)
        expected = chosen(expected)
        lines = diff(expected, actual, args.accept_nonstrict)
        if lines:
            print("%s: %d difference(s) from %s:" % (args.label, len(lines), args.expected))
            print("\n".join(lines))
            status = 1

    if failed:
        print("%s: FAILED cases: %s" % (args.label, ", ".join(failed)))
        status = 1

    print(summary(args.label, actual))
    return status


if __name__ == "__main__":
    sys.exit(main())
