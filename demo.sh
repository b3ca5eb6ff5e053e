#!/usr/bin/env bash
# demo.sh — install what is needed, build, and show justx at work on loopback.
#
# Today the demo shows the protocol layer: a court seals a sentence order,
# probation verifies it end to end, and forged or altered messages are
# refused. The gateway and adapters join it as they land (issues 5 and 6).
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"
jx_install_packages
jx_build "$JX_ROOT/build" >/dev/null

run="$JX_ROOT/demo-run"
rm -rf "$run"
mkdir -p "$run"
chmod 700 "$run"
justx="$JX_ROOT/build/adapters/justx"
pki="$run/pki"

say() { printf '\n== %s\n' "$*"; }

say "Making a development PKI (a root CA, the gateway, five agencies, test certificates)"
"$JX_ROOT/certs/make-dev-pki.sh" "$pki" >/dev/null
echo "   certificates and keys are in $pki (keys readable by their owner only)"

say "The Pervomaisky District Court of Bishkek signs a sentence order for Bakyt Asanov"
cat > "$run/sentence-order.json" <<'JSON'
{
  "person": {"familyName": "Asanov", "givenNames": "Bakyt", "dateOfBirth": "1990-04-12",
             "personalId": "21204199000123", "personalIdCountry": "KG", "sex": "SEX_MALE"},
  "court": {"agencyId": "KG-COURT-BISHKEK", "name": "Pervomaisky District Court of Bishkek",
            "officialName": "A. Toktogulova", "officialRole": "judge"},
  "caseNumber": "UD-1234/26",
  "provisions": [{"code": "Criminal Code of the Kyrgyz Republic", "article": "209",
                  "part": "part 1", "description": "Fraud"}],
  "sentenceKind": "SENTENCE_KIND_PROBATION",
  "termDays": 730,
  "probationPeriodDays": 730,
  "conditions": [{"code": "REPORT_WEEKLY",
                  "description": "Report to the probation office every Monday"}],
  "decisionDate": "2026-11-02",
  "entryIntoForceDate": "2026-11-17",
  "supervisingOffice": "Probation Department, Pervomaisky district"
}
JSON
id=$("$justx" seal --type justx.v1.SentenceOrder \
  --cert "$pki/KG-COURT-BISHKEK.pem" --key "$pki/KG-COURT-BISHKEK.key" \
  --json "$run/sentence-order.json" --to KG-PROBATION --to KG-PRISON \
  --case-id UD-1234/26 --out "$run/sentence-order.envelope")
echo "   sealed as message $id ($(stat -c %s "$run/sentence-order.envelope") bytes, signed with the court's key)"

say "Probation checks who signed it and that nothing was changed on the way"
"$justx" open --ca "$pki/ca.pem" --crl "$pki/crl.pem" --sender KG-COURT-BISHKEK \
  "$run/sentence-order.envelope" | sed 's/^/   /'

say "Someone changes one byte of the order on the way: probation refuses it"
cp "$run/sentence-order.envelope" "$run/altered.envelope"
offset=$(grep -abo 'Asanov' "$run/altered.envelope" | head -1 | cut -d: -f1)
printf 'B' | dd of="$run/altered.envelope" bs=1 seek="$offset" conv=notrunc status=none
"$justx" open --ca "$pki/ca.pem" --crl "$pki/crl.pem" "$run/altered.envelope" 2>&1 |
  sed 's/^/   /' || true

say "A forger with a certificate from a CA nobody trusts signs an order: refused"
"$justx" seal --type justx.v1.SentenceOrder \
  --cert "$pki/FOREIGN-AGENCY.pem" --key "$pki/FOREIGN-AGENCY.key" \
  --json "$run/sentence-order.json" --out "$run/forged.envelope" >/dev/null
"$justx" open --ca "$pki/ca.pem" --crl "$pki/crl.pem" "$run/forged.envelope" 2>&1 |
  sed 's/^/   /' || true

say "An agency whose certificate was revoked: refused"
"$justx" seal --type justx.v1.SentenceOrder \
  --cert "$pki/TEST-REVOKED.pem" --key "$pki/TEST-REVOKED.key" \
  --json "$run/sentence-order.json" --out "$run/revoked.envelope" >/dev/null
"$justx" open --ca "$pki/ca.pem" --crl "$pki/crl.pem" "$run/revoked.envelope" 2>&1 |
  sed 's/^/   /' || true

say "Done. Files are in $run"
