#!/usr/bin/env python3
"""An independent oracle for the flagnet policy tests.

Loads model.conf, policy.csv and roles.csv from a policy directory with
pycasbin (Casbin's Python implementation, parsed by pycasbin's own file
adapter, not by flagnet), decides every row of a policy tests file, and fails
on any row where pycasbin disagrees with the `expected` column. With
--compare FILE (the decisions written by `flagctl policy test --emit FILE`)
it also fails on any row where pycasbin and flagnet's engine disagree, and
on rows missing from either side.

pycasbin and casbin-rs agree on what the flagnet model uses (equality, g()
with domains, ASCII identifiers, the role-chain cap); see
../../../shared/NOTES.md. Install: pip install -r policies/tests/requirements.txt

Usage: oracle.py [--policy DIR] [--tests FILE] [--compare FILE]
Exit status: 0 when every row agrees, 1 on any disagreement, 2 when the
files cannot be read.
"""

import argparse
import csv
import logging
import os
import sys
import tempfile

HEADER = ["role", "actor_agency", "owner_agency", "field_class", "purpose", "expected"]
DECISIONS_HEADER = ["line", "role", "actor_agency", "owner_agency", "field_class", "purpose", "decision"]


def read_rows(path):
    """The data rows of a CSV file with `#` comments, keyed by line number."""
    rows = {}
    header = None
    with open(path, encoding="ascii") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = [field.strip() for field in next(csv.reader([line]))]
            if header is None:
                header = fields
                continue
            if len(fields) != len(header):
                raise ValueError(f"{path}:{number}: expected {len(header)} fields, found {len(fields)}")
            rows[number] = dict(zip(header, fields))
    return header, rows


def build_enforcer(policy_dir):
    import casbin

    logging.getLogger("casbin").setLevel(logging.WARNING)
    # pycasbin's FileAdapter reads one file; hand it policy.csv and roles.csv as one.
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as combined:
        for name in ("policy.csv", "roles.csv"):
            with open(os.path.join(policy_dir, name), encoding="ascii") as part:
                combined.write(part.read())
                combined.write("\n")
        combined_path = combined.name
    try:
        return casbin.Enforcer(os.path.join(policy_dir, "model.conf"), combined_path)
    finally:
        os.unlink(combined_path)


def describe(row):
    return (
        f"{row['role']} at {row['actor_agency']} asking for {row['field_class']} of a flag owned by "
        f"{row['owner_agency']} for {row['purpose']}"
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=os.path.dirname(here), help="policy directory (default: policies/)")
    parser.add_argument("--tests", help="policy tests file (default: DIR/tests/cases.csv)")
    parser.add_argument("--compare", metavar="FILE", help="decisions from `flagctl policy test --emit FILE`")
    args = parser.parse_args()
    tests = args.tests or os.path.join(args.policy, "tests", "cases.csv")

    try:
        header, cases = read_rows(tests)
        if header != HEADER:
            raise ValueError(f"{tests}: the header must be {','.join(HEADER)}")
        flagnet = None
        if args.compare:
            decisions_header, flagnet = read_rows(args.compare)
            if decisions_header != DECISIONS_HEADER:
                raise ValueError(f"{args.compare}: the header must be {','.join(DECISIONS_HEADER)}")
            flagnet = {int(row["line"]): row for row in flagnet.values()}
        enforcer = build_enforcer(args.policy)
    except (OSError, ValueError) as error:
        print(f"oracle: {error}", file=sys.stderr)
        return 2

    problems = []
    for number, row in sorted(cases.items()):
        request = (row["role"], row["actor_agency"], row["owner_agency"], row["field_class"], row["purpose"])
        pycasbin = "allow" if enforcer.enforce(*request) else "deny"
        if row["expected"] not in ("allow", "deny"):
            problems.append(f"line {number}: expected must be allow or deny, found {row['expected']!r}")
            continue
        if pycasbin != row["expected"]:
            problems.append(f"line {number}: {describe(row)}: expected {row['expected']}, pycasbin says {pycasbin}")
        if flagnet is not None:
            theirs = flagnet.get(number)
            if theirs is None:
                problems.append(f"line {number}: {describe(row)}: missing from {args.compare}")
            elif tuple(theirs[key] for key in HEADER[:5]) != request:
                problems.append(f"line {number}: {args.compare} has a different request on this line")
            elif theirs["decision"] != pycasbin:
                problems.append(
                    f"line {number}: {describe(row)}: flagnet says {theirs['decision']}, pycasbin says {pycasbin}"
                )
    if flagnet is not None:
        for number in sorted(set(flagnet) - set(cases)):
            problems.append(f"line {number}: in {args.compare} but not a row of {tests}")

    for problem in problems:
        print(f"FAIL {problem}")
    compared = " and with flagnet's decisions" if flagnet is not None else ""
    print(f"pycasbin oracle: {len(cases)} rows of {tests} checked against the expected column{compared}: "
          f"{len(problems)} disagreements")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
