#!/usr/bin/env python3
"""interop.py — envelopes checked by independent implementations.

Direction 1: `justx seal` makes an envelope; protoc (Debian's protobuf-compiler,
the reference C++ implementation) decodes it, and the openssl command line
verifies its signature and payload digest from the certificate inside it.
Direction 2: protoc encodes a header and an envelope, openssl signs the header;
`justx open` must accept it, and must refuse it after one byte is changed.

usage: interop.py JUSTX_BINARY PKI_DIR SCHEMA_DIR
"""
import codecs
import hashlib
import os
import re
import subprocess
import sys
import tempfile

JUSTX, PKI, SCHEMAS = sys.argv[1:4]
CONTEXT = b"justx/v1 envelope header\n"
failures = []


def run(args, stdin=None, check=True):
    result = subprocess.run(args, input=stdin, capture_output=True)
    if check and result.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(args)} exited {result.returncode}: "
                         f"{result.stderr.decode(errors='replace')}")
    return result


def protoc(mode, message, data):
    schema = "justx/v1/envelope.proto" if message in (
        "Envelope", "Header") else "justx/v1/documents.proto"
    return run(["protoc", f"--{mode}=justx.v1.{message}", f"-I{SCHEMAS}", schema],
               stdin=data).stdout


def text_bytes(text, field):
    """The bytes of one field in protoc's text output (C escapes)."""
    match = re.search(rb'^' + field.encode() + rb': "(.*)"$', text, re.M)
    if not match:
        raise SystemExit(f"FAIL: protoc output has no field {field}")
    return codecs.escape_decode(match.group(1))[0]


def escape(data):
    return "".join(f"\\{b:03o}" for b in data)


def openssl_verify(pub, data, signature, key_type, work):
    data_file, sig_file = os.path.join(work, "signed.bin"), os.path.join(work, "sig.bin")
    open(data_file, "wb").write(data)
    open(sig_file, "wb").write(signature)
    if key_type == "ED25519":
        args = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
                "-in", data_file, "-sigfile", sig_file]
    else:
        args = ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig_file]
        if key_type == "RSA":
            args[3:3] = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
        args.append(data_file)
    return run(args, check=False).returncode == 0


def openssl_sign(key, data, key_type, work):
    data_file = os.path.join(work, "to-sign.bin")
    open(data_file, "wb").write(data)
    if key_type == "ED25519":
        args = ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", data_file]
    else:
        args = ["openssl", "dgst", "-sha256", "-sign", key]
        if key_type == "RSA":
            args[3:3] = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
        args.append(data_file)
    return run(args).stdout


PAYLOAD_TEXT = b'''person { family_name: "Asanov" given_names: "Bakyt" date_of_birth: "1990-04-12"
  personal_id: "21204199000123" sex: SEX_MALE }
case_number: "UD-1234/26" status: STATUS_UNDER_SUPERVISION effective_at_ms: 1790000000000
details: "Taken under supervision by the Pervomaisky probation office"'''


def check(agency, key_type, work):
    payload = protoc("encode", "StatusUpdate", PAYLOAD_TEXT)
    payload_file = os.path.join(work, "payload.bin")
    envelope_file = os.path.join(work, "envelope.bin")
    open(payload_file, "wb").write(payload)

    # 1. justx seals; protoc decodes; openssl verifies.
    run([JUSTX, "seal", "--type", "justx.v1.StatusUpdate", "--cert", f"{PKI}/{agency}.pem",
         "--key", f"{PKI}/{agency}.key", "--binary", payload_file, "--to", "KG-COURT-BISHKEK",
         "--case-id", "UD-1234/26", "--out", envelope_file])
    envelope_text = protoc("decode", "Envelope", open(envelope_file, "rb").read())
    header = text_bytes(envelope_text, "header")
    signature = text_bytes(envelope_text, "signature")
    cert_der = text_bytes(envelope_text, "signer_cert")
    assert text_bytes(envelope_text, "payload") == payload, "payload bytes differ"
    header_text = protoc("decode", "Header", header)
    for expected in (f'sender: "{agency}"', 'type: "justx.v1.StatusUpdate"',
                     'recipients: "KG-COURT-BISHKEK"', 'case_id: "UD-1234/26"'):
        if expected.encode() not in header_text:
            failures.append(f"{agency}: protoc-decoded header lacks {expected}")
    if text_bytes(header_text, "payload_sha256") != hashlib.sha256(payload).digest():
        failures.append(f"{agency}: payload_sha256 is not SHA-256 of the payload")
    if b"Asanov" not in protoc("decode", "StatusUpdate", payload):
        failures.append(f"{agency}: protoc cannot decode the payload")

    cert_file, pub = os.path.join(work, "signer.der"), os.path.join(work, "signer.pub")
    open(cert_file, "wb").write(cert_der)
    run(["openssl", "x509", "-inform", "DER", "-in", cert_file, "-noout", "-pubkey", "-out", pub])
    if not openssl_verify(pub, CONTEXT + header, signature, key_type, work):
        failures.append(f"{agency}: openssl does not verify the justx signature")
    if openssl_verify(pub, CONTEXT + header[:-1] + bytes([header[-1] ^ 1]), signature,
                      key_type, work):
        failures.append(f"{agency}: openssl verified a changed header (test is broken)")

    # 2. protoc encodes, openssl signs; justx opens.
    header_text = (f'message_id: "0190f2a0-1234-7abc-8def-0123456789ab" sender: "{agency}" '
                   f'recipients: "KG-PRISON" type: "justx.v1.StatusUpdate" '
                   f'case_id: "EXT-1" created_at_ms: {int(__import__("time").time() * 1000)} '
                   f'payload_sha256: "{escape(hashlib.sha256(payload).digest())}"').encode()
    header = protoc("encode", "Header", header_text)
    signature = openssl_sign(f"{PKI}/{agency}.key", CONTEXT + header, key_type, work)
    for tamper in (False, True):
        signed_header = header if not tamper else header.replace(b"EXT-1", b"EXT-2")
        envelope = protoc("encode", "Envelope", (
            f'header: "{escape(signed_header)}" payload: "{escape(payload)}" '
            f'signature: "{escape(signature)}" signer_cert: "{escape(cert_der)}"').encode())
        open(envelope_file, "wb").write(envelope)
        result = run([JUSTX, "open", "--ca", f"{PKI}/ca.pem", "--crl", f"{PKI}/crl.pem",
                      "--json", envelope_file], check=False)
        if not tamper and result.returncode != 0:
            failures.append(f"{agency}: justx open refused an openssl-signed envelope: "
                            f"{result.stderr.decode()}")
        if tamper and (result.returncode != 1 or b"BAD_SIGNATURE" not in result.stdout):
            failures.append(f"{agency}: justx open did not refuse a changed header with "
                            f"BAD_SIGNATURE: {result.stdout.decode()}")
    print(f"ok: {agency} ({key_type}) both directions")


with tempfile.TemporaryDirectory() as work:
    for agency, key_type in (("KG-PROBATION", "EC"), ("TEST-RSA", "RSA"),
                             ("TEST-ED25519", "ED25519")):
        check(agency, key_type, work)

for failure in failures:
    print("FAIL:", failure)
sys.exit(1 if failures else 0)
