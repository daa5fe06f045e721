"""Validates an OpenAPI document with openapi-spec-validator (3.1 rules).

Usage: validate_openapi.py FILE. Exit 0 and prints the OpenAPI version when valid; exit 1 with
the validator's message otherwise.
"""
import json
import sys

from openapi_spec_validator import validate


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        document = json.load(f)
    try:
        validate(document)
    except Exception as e:  # the validator raises several kinds; all mean "invalid"
        print(f"invalid: {e}", file=sys.stderr)
        sys.exit(1)
    print(document["openapi"])


if __name__ == "__main__":
    main()
