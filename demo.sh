#!/usr/bin/env bash
# demo.sh — install what is needed, build, and play one case through justx on
# this machine: a gateway and five agency adapters on loopback, with a
# development PKI made for the occasion. Everything it starts, it stops.
set -euo pipefail
source "$(dirname "$0")/tools/common.sh"
jx_install_packages
jx_build "$JX_ROOT/build" >/dev/null

bin="$JX_ROOT/build"
run="$JX_ROOT/demo-run"
rm -rf "$run"
mkdir -p "$run"
chmod 700 "$run"
pids=()

stop_everything() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_everything EXIT

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
tell() { printf '   %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 30 s for a file matching a glob; prints its path.
wait_for() {
  local pattern=$1
  for _ in $(seq 300); do
    for f in $pattern; do
      if [ -e "$f" ]; then echo "$f"; return 0; fi
    done
    sleep 0.1
  done
  echo "demo: nothing appeared at $pattern" >&2
  return 1
}

declare -A short=([KG-COURT-BISHKEK]=court [KG-PROSECUTOR]=prosecutor [KG-PROBATION]=probation
                  [KG-PRISON]=prison [LV-PROBATION]=latvia)
declare -A title=([KG-COURT-BISHKEK]="the Pervomaisky District Court of Bishkek"
                  [KG-PROSECUTOR]="the prosecutor's office"
                  [KG-PROBATION]="the Kyrgyz probation service"
                  [KG-PRISON]="the prison service"
                  [LV-PROBATION]="the State Probation Service of Latvia")

say "Setting up: a development PKI, a gateway and five agency adapters on 127.0.0.1"
"$JX_ROOT/certs/make-dev-pki.sh" "$run/pki" >/dev/null
tell "certificates for the gateway and every agency: $run/pki (private keys readable by their owner only)"

mkdir -p "$run/gateway"
ln -s ../pki "$run/gateway/pki"
port=$(free_port)
sed -e "s/127.0.0.1:7443/127.0.0.1:$port/" "$JX_ROOT/conf/gateway.conf" > "$run/gateway/gateway.conf"
"$bin/gateway/justx-gateway" -c "$run/gateway/gateway.conf" 2> "$run/gateway/gateway.log" &
pids+=($!)
tell "gateway listening on 127.0.0.1:$port (mutual TLS 1.3), journal in $run/gateway/journal"

for agency in "${!short[@]}"; do
  dir="$run/agencies/${short[$agency]}"
  mkdir -p "$dir"
  ln -s ../../pki "$dir/pki"
  cat > "$dir/adapter.conf" <<EOF
adapter: {
  agency_cert = "pki/$agency.pem";
  agency_key = "pki/$agency.key";
  ca = "pki/ca.pem";
  crls = [ "pki/crl.pem" ];
  state_dir = "state";
  gateway = "127.0.0.1:$port";
  gateway_name = "localhost";
  gateway_cert = "pki/gateway.pem";
  gateway_origin = "justx.demo/gateway";
  dropbox: { dir = "dropbox"; poll_ms = 100; };
  http: { listen = "127.0.0.1:$(free_port)"; };
};
EOF
  "$bin/adapters/justx-adapter" -c "$dir/adapter.conf" 2> "$dir/adapter.log" &
  pids+=($!)
done
tell "adapters for ${!short[*]}: drop-box folders and HTTP APIs under $run/agencies"
sleep 1

# Puts a document into an agency's drop-box (write, then rename, as agency
# systems should) and follows it until the gateway answered ACCEPTED. Sets
# $message_id; the submission names its own id so it can be followed.
send_document() {
  local from=$1 file=$2 extra=${3:-}
  local box="$run/agencies/${short[$from]}/dropbox"
  message_id=$(python3 -c '
import os, time
b = bytearray(int(time.time() * 1000).to_bytes(6, "big") + os.urandom(10))
b[6] = 0x70 | (b[6] & 0x0f); b[8] = 0x80 | (b[8] & 0x3f)   # UUIDv7
h = b.hex(); print(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")')
  python3 - "$file" "$box/outbox/.$message_id.tmp" "$extra" "$message_id" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
if sys.argv[3]:
    doc.update(json.loads(sys.argv[3]))
doc["messageId"] = sys.argv[4]
json.dump(doc, open(sys.argv[2], "w"), ensure_ascii=False, indent=1)
PY
  mv "$box/outbox/.$message_id.tmp" "$box/outbox/$message_id.json"
  local receipt
  receipt=$(wait_for "$box/receipts/${message_id}_ACCEPTED*.json")
  tell "the gateway checked the signature and the route, wrote it to the audit journal and answered ACCEPTED"
  tell "(message $message_id, journal record #$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('journalIndex','?'))" "$receipt"))"
}

# Shows what a recipient found in its inbox, in words.
show_received() {
  local to=$1 from=$2
  local file
  file=$(wait_for "$run/agencies/${short[$to]}/dropbox/inbox/${from}_${message_id}.json")
  python3 - "$file" "${title[$to]}" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
p = m.get("payload", {})
person = p.get("person", {})
who = f'{person.get("givenNames","")} {person.get("familyName","")}'.strip()
kind = m.get("type", "").split(".")[-1]
line = f'{sys.argv[2]} received a {kind} about {who}, signed by {m.get("sender")} (signature verified on arrival)'
print("   " + line)
for key in ("recommendation", "riskOfReoffending", "sentenceKind", "termDays", "status", "details", "reasonDetails"):
    if key in p:
        print(f"      {key}: {p[key]}")
PY
}

wait_delivered() {
  local from=$1 to=$2
  wait_for "$run/agencies/${short[$from]}/dropbox/receipts/${message_id}_DELIVERED_${to}.json" >/dev/null
  tell "${title[$from]} holds a DELIVERED receipt for $to, with $to's own signed acknowledgement in it"
}

say "1. The prosecutor's office refers Bakyt Asanov to probation for a pre-sentence report"
send_document KG-PROSECUTOR "$JX_ROOT/demo/1-referral.json"
referral=$message_id
show_received KG-PROBATION KG-PROSECUTOR
wait_delivered KG-PROSECUTOR KG-PROBATION

say "2. Probation answers with a risk-and-needs assessment, to the prosecutor and the court"
send_document KG-PROBATION "$JX_ROOT/demo/2-assessment.json" "{\"correlationId\": \"$referral\"}"
show_received KG-PROSECUTOR KG-PROBATION
show_received KG-COURT-BISHKEK KG-PROBATION

say "3. The court sentences him to probation; the routes send the order to probation AND the prison service"
send_document KG-COURT-BISHKEK "$JX_ROOT/demo/3-sentence.json"
sentence=$message_id
show_received KG-PROBATION KG-COURT-BISHKEK
show_received KG-PRISON KG-COURT-BISHKEK
wait_delivered KG-COURT-BISHKEK KG-PROBATION
wait_delivered KG-COURT-BISHKEK KG-PRISON

say "4. Probation reports that he has been taken under supervision"
send_document KG-PROBATION "$JX_ROOT/demo/4-supervision.json" "{\"correlationId\": \"$sentence\"}"
show_received KG-COURT-BISHKEK KG-PROBATION
show_received KG-PROSECUTOR KG-PROBATION

say "5. He moves to Riga: probation transfers his supervision to Latvia"
send_document KG-PROBATION "$JX_ROOT/demo/5-transfer.json"
show_received LV-PROBATION KG-PROBATION
wait_delivered KG-PROBATION LV-PROBATION

say "6. A forger signs a 'sentence order' in the court's name with a key of his own"
forge="$run/forger"
mkdir -p "$forge"
chmod 700 "$forge"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=KG-COURT-BISHKEK" -addext "subjectAltName=URI:urn:justx:agency:KG-COURT-BISHKEK" \
  -keyout "$forge/forged.key" -out "$forge/forged.pem" 2>/dev/null
python3 -c "import json; print(json.dumps(json.load(open('$JX_ROOT/demo/3-sentence.json'))['payload']))" \
  > "$forge/order.json"
"$bin/adapters/justx" seal --type justx.v1.SentenceOrder --cert "$forge/forged.pem" \
  --key "$forge/forged.key" --json "$forge/order.json" --to KG-PRISON --case-id UD-1234/26 \
  --out "$forge/forged.envelope" > /dev/null
tell "the prosecutor's office received it by e-mail and passes it on through its adapter"
prosecutor_conf="$run/agencies/prosecutor/adapter.conf"
if "$bin/adapters/justx" send -c "$prosecutor_conf" --envelope "$forge/forged.envelope" \
     --wait ACCEPTED --timeout 20 > "$forge/result.txt" 2>&1; then
  tell "UNEXPECTED: the forged order was accepted"; exit 1
fi
grep "refused message" "$forge/result.txt" | sed 's/^justx send: /   /'
tell "the prison never sees it; the refusal itself is in the audit journal (below, REJECTED)"

say "7. The auditor's view: every event of case UD-1234/26, from the journal alone"
"$bin/gateway/justx-audit" trail "$run/gateway/journal" --case-id UD-1234/26 | sed 's/^/   /'

say "8. The auditor verifies the whole journal with nothing but the gateway's public key"
"$bin/gateway/justx-audit" verify "$run/gateway/journal" --key "$run/pki/gateway.pub" | sed 's/^/   /'

say "9. A proof, kept by the court, that its sentence order was accepted"
index=$("$bin/gateway/justx-audit" trail "$run/gateway/journal" --message-id "$sentence" --json |
        python3 -c 'import json,sys; print([r for r in json.load(sys.stdin)["records"] if r["event"]=="ACCEPTED"][0]["index"])')
sleep 1.2 # the gateway signs a checkpoint at least every second
"$bin/gateway/justx-audit" prove "$run/gateway/journal" --index "$index" --output "$run/sentence-order.proof"
tell "proof of journal record #$index written to $run/sentence-order.proof; checking it offline:"
"$bin/gateway/justx-audit" verify-proof "$run/sentence-order.proof" --key "$run/pki/gateway.pub" |
  sed 's/^/   /'

say "Where things are"
tell "gateway log and journal:   $run/gateway/gateway.log, $run/gateway/journal/"
tell "each agency's drop-box:    $run/agencies/<agency>/dropbox/{outbox,sent,inbox,receipts,rejected}"
tell "each agency's adapter log: $run/agencies/<agency>/adapter.log"
tell "development PKI:           $run/pki"
say "Stopping the gateway and the adapters"
