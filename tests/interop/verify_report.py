#!/usr/bin/env python3
"""Verify a Seahawks signed report with standard, non-Rust tools.

    verify_report.py --ca ca.pem --schema report.schema.json report.jws

Checks, with PyJWT and cryptography only (no Seahawks code):
  1. the leaf certificate in the JWS header's x5c is issued by a CA in ca.pem (the nester's
     /ca.pem is a bundle: every CA that ever signed, so reports from before a CA rotation
     still verify), valid now,
     has an Ed25519 key and names a probe (SAN URI urn:seahawks:probe:<uuid>);
  2. kid is the SHA-256 of that certificate;
  3. the JWS signature verifies with the leaf's key (alg EdDSA, or Ed25519 per RFC 9864);
  4. the payload validates against the committed JSON Schema, and its probe_id is the
     certificate's.
Prints a JSON summary and exits 0, or prints the failure and exits 1.
"""

import argparse
import base64
import datetime
import hashlib
import json
import sys

import jsonschema
import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding

PROBE_URI = "urn:seahawks:probe:"


def verify(token: str, ca_pem: bytes, schema: dict) -> dict:
    header = jwt.get_unverified_header(token)
    if header.get("alg") not in ("EdDSA", "Ed25519"):
        raise ValueError(f"unexpected alg {header.get('alg')!r}")
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
    leaf = chain[0]
    for ca in x509.load_pem_x509_certificates(ca_pem):
        try:
            leaf.verify_directly_issued_by(ca)
            break
        except (ValueError, TypeError, InvalidSignature):
            continue
    else:
        raise ValueError("the signer certificate is issued by no CA in the bundle")
    now = datetime.datetime.now(datetime.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise ValueError("signer certificate is not valid now")
    key = leaf.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("signer key is not Ed25519")
    fingerprint = hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
    if header.get("kid") != fingerprint:
        raise ValueError("kid is not the SHA-256 of the signer certificate")
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    probes = [u[len(PROBE_URI):] for u in sans.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(PROBE_URI)]
    if len(probes) != 1:
        raise ValueError("signer certificate names no single probe")

    payload = jwt.api_jws.PyJWS().decode(token, key=key, algorithms=[header["alg"]])
    report = json.loads(payload)
    jsonschema.validate(report, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    if report["probe_id"] != probes[0]:
        raise ValueError("report probe_id differs from the signer certificate")
    return {"probe_id": report["probe_id"], "report_id": report["report_id"], "kid": fingerprint}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ca", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("jws")
    args = parser.parse_args()
    with open(args.jws) as f:
        token = f.read().strip()
    with open(args.ca, "rb") as f:
        ca_pem = f.read()
    with open(args.schema) as f:
        schema = json.load(f)
    try:
        print(json.dumps(verify(token, ca_pem, schema)))
    except Exception as e:  # every failure is a verification failure, reported plainly
        print(f"verification failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
