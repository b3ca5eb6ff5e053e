#!/usr/bin/env bash
# make-dev-pki.sh DIR — make a complete DEVELOPMENT PKI for justx into DIR.
#
# Role: gives tests, examples and developers a root CA, two CRLs, the gateway's
# certificate, one certificate per example agency and a set of deliberately
# broken certificates (revoked, expired, not yet valid, no agency SAN, foreign
# issuer), all with the file names listed in certs/README.md.
#
# Invariants:
# - Only the `openssl` command line (OpenSSL 3.0) is used; nothing else is
#   needed at build time.
# - Every private key is written with mode 0600 (umask 077); DIR is created
#   with mode 0700 when absent.
# - Running it again regenerates everything from scratch (new keys, new random
#   serials) with the same layout. If it fails half way, DIR/ca.pem is removed
#   so that a build system keyed on DIR/ca.pem runs it again.
# - The CA database lives in a temporary folder inside DIR that is removed on
#   exit; the PKI cannot issue more certificates later, by design.
#
# NEVER use these keys for anything but development and tests: the private
# keys of the root CA sit unencrypted next to the certificates.
set -euo pipefail
umask 077

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi

if [[ ! -d "$1" ]]; then
    mkdir -p -- "$1"
    chmod 0700 -- "$1"
fi
DIR="$(cd -- "$1" && pwd)"

AGENCIES=(KG-COURT-BISHKEK KG-PROSECUTOR KG-PROBATION KG-PRISON LV-PROBATION)
TESTS=(TEST-RSA TEST-ED25519 TEST-REVOKED TEST-EXPIRED TEST-NOT-YET-VALID
       TEST-NOSAN FOREIGN-AGENCY)

# Remove exactly the files this script makes; anything else in DIR is left.
clean_old() {
    local id
    rm -f -- "$DIR/ca.pem" "$DIR/ca.key" "$DIR/crl.pem" "$DIR/crl-ed25519-revoked.pem" \
             "$DIR/foreign-ca.pem" "$DIR/foreign-ca.key" \
             "$DIR/gateway.pem" "$DIR/gateway.key" "$DIR/gateway.pub"
    for id in "${AGENCIES[@]}" "${TESTS[@]}"; do
        rm -f -- "$DIR/$id.pem" "$DIR/$id.key"
    done
    rm -rf -- "$DIR"/.ca-db.*
}
clean_old

WORK="$(mktemp -d "$DIR/.ca-db.XXXXXX")"
LOG="$WORK/openssl.log"
finish() {
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "make-dev-pki: failed (exit $rc); openssl output:" >&2
        [[ -f "$LOG" ]] && cat -- "$LOG" >&2
        rm -f -- "$DIR/ca.pem"
    fi
    rm -rf -- "$WORK"
}
trap finish EXIT

# Runs openssl quietly; its chatter goes to the log, shown only on failure.
ossl() {
    : >"$LOG"
    openssl "$@" >>"$LOG" 2>&1
}

# genkey TYPE OUT — TYPE is ec, rsa or ed25519.
genkey() {
    case "$1" in
        ec)      ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
                      -pkeyopt ec_param_enc:named_curve -out "$2" ;;
        rsa)     ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$2" ;;
        ed25519) ossl genpkey -algorithm ED25519 -out "$2" ;;
        *)       echo "genkey: unknown key type $1" >&2; return 1 ;;
    esac
    chmod 0600 -- "$2"
}

# ca_config NAME — writes $WORK/NAME/ca.cnf, the throwaway `openssl ca` setup.
ca_config() {
    local db="$WORK/$1"
    mkdir -p -- "$db/newcerts"
    : >"$db/index.txt"
    echo 1000 >"$db/crlnumber"
    cat >"$db/ca.cnf" <<EOF
[ ca ]
default_ca = dev_ca

[ dev_ca ]
dir              = $db
database         = \$dir/index.txt
new_certs_dir    = \$dir/newcerts
crlnumber        = \$dir/crlnumber
rand_serial      = yes
default_md       = sha256
default_days     = 730
default_crl_days = 3650
policy           = policy_any
preserve         = yes
email_in_dn      = no
unique_subject   = no
copy_extensions  = none
crl_extensions   = crl_ext

[ policy_any ]
countryName      = optional
organizationName = optional
commonName       = supplied

[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ req ]
distinguished_name = req_dn
prompt             = no

[ req_dn ]
CN = unused

[ v3_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
}

# make_root NAME PEM KEY SUBJECT — a self-signed ECDSA P-256 CA for 10 years.
make_root() {
    ca_config "$1"
    genkey ec "$3"
    ossl req -config "$WORK/$1/ca.cnf" -new -x509 -key "$3" -sha256 \
         -days 3650 -subj "$4" -extensions v3_root -out "$2"
    chmod 0644 -- "$2"
    echo "made $2 (root CA, ECDSA P-256, subject $4)"
}

# issue CA ID KEYTYPE SUBJECT SAN EKU [START END]
# Makes DIR/ID.key and DIR/ID.pem, signed by CA (root or foreign).
issue() {
    local ca="$1" id="$2" ktype="$3" subj="$4" san="$5" eku="$6"
    local start="${7:-}" end="${8:-}"
    local cacert cakey key="$DIR/$id.key" pem="$DIR/$id.pem"
    local csr="$WORK/$id.csr" ext="$WORK/$id.ext"
    if [[ "$ca" == root ]]; then
        cacert="$DIR/ca.pem"; cakey="$DIR/ca.key"
    else
        cacert="$DIR/foreign-ca.pem"; cakey="$DIR/foreign-ca.key"
    fi
    genkey "$ktype" "$key"
    ossl req -config "$WORK/$ca/ca.cnf" -new -key "$key" -subj "$subj" -out "$csr"
    cat >"$ext" <<EOF
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = $eku
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
subjectAltName         = $san
EOF
    local dates=(-days 730)
    [[ -n "$start" ]] && dates=(-startdate "$start" -enddate "$end")
    ossl ca -config "$WORK/$ca/ca.cnf" -batch -notext -cert "$cacert" \
         -keyfile "$cakey" -extfile "$ext" "${dates[@]}" -in "$csr" -out "$pem"
    chmod 0644 -- "$pem"
    local validity
    validity="$(openssl x509 -in "$pem" -noout -startdate -enddate | tr '\n' ' ')"
    echo "made $pem ($ktype, issuer $ca, SAN $san, ${validity% })"
}

agency_san() { echo "URI:urn:justx:agency:$1"; }

# --- root CA -------------------------------------------------------------
make_root root "$DIR/ca.pem" "$DIR/ca.key" \
    "/O=justx Development/CN=justx Development Root CA"

# --- gateway -------------------------------------------------------------
issue root gateway ed25519 "/O=justx Development/CN=JX-GATEWAY" \
    "DNS:localhost, IP:127.0.0.1, URI:urn:justx:gateway:JX-GATEWAY" \
    "serverAuth, clientAuth"
ossl pkey -in "$DIR/gateway.key" -pubout -out "$DIR/gateway.pub"
chmod 0644 -- "$DIR/gateway.pub"
echo "made $DIR/gateway.pub (gateway public key)"

# --- example agencies ----------------------------------------------------
declare -A ORG=(
    [KG-COURT-BISHKEK]="Pervomaisky District Court of Bishkek"
    [KG-PROSECUTOR]="General Prosecutor's Office of the Kyrgyz Republic"
    [KG-PROBATION]="Probation Department of the Kyrgyz Republic"
    [KG-PRISON]="State Penitentiary Service of the Kyrgyz Republic"
    [LV-PROBATION]="State Probation Service of Latvia"
)
for id in "${AGENCIES[@]}"; do
    issue root "$id" ec "/C=${id%%-*}/O=${ORG[$id]}/CN=$id" \
        "$(agency_san "$id")" clientAuth
done

# --- test certificates ---------------------------------------------------
TEST_O="/C=KG/O=justx Test Agency"
issue root TEST-RSA rsa "$TEST_O/CN=TEST-RSA" "$(agency_san TEST-RSA)" clientAuth
issue root TEST-ED25519 ed25519 "$TEST_O/CN=TEST-ED25519" \
    "$(agency_san TEST-ED25519)" clientAuth
issue root TEST-REVOKED ec "$TEST_O/CN=TEST-REVOKED" \
    "$(agency_san TEST-REVOKED)" clientAuth
issue root TEST-EXPIRED ec "$TEST_O/CN=TEST-EXPIRED" \
    "$(agency_san TEST-EXPIRED)" clientAuth 20200101000000Z 20210101000000Z
issue root TEST-NOT-YET-VALID ec "$TEST_O/CN=TEST-NOT-YET-VALID" \
    "$(agency_san TEST-NOT-YET-VALID)" clientAuth 20990101000000Z 21000101000000Z
issue root TEST-NOSAN ec "$TEST_O/CN=TEST-NOSAN" "DNS:test-nosan.invalid" clientAuth

# --- CRL of the root CA --------------------------------------------------
ossl ca -config "$WORK/root/ca.cnf" -batch -cert "$DIR/ca.pem" -keyfile "$DIR/ca.key" \
     -revoke "$DIR/TEST-REVOKED.pem" -crl_reason keyCompromise
ossl ca -config "$WORK/root/ca.cnf" -batch -cert "$DIR/ca.pem" -keyfile "$DIR/ca.key" \
     -gencrl -crldays 3650 -out "$DIR/crl.pem"
chmod 0644 -- "$DIR/crl.pem"
echo "made $DIR/crl.pem (root CA CRL, revokes TEST-REVOKED, next update in 3650 days)"

# A later CRL of the same CA that also revokes TEST-ED25519, for tests that
# swap CRLs under a running gateway (SIGHUP). crl.pem above is made first and
# stays as it is: revoking here only changes the CA database.
ossl ca -config "$WORK/root/ca.cnf" -batch -cert "$DIR/ca.pem" -keyfile "$DIR/ca.key" \
     -revoke "$DIR/TEST-ED25519.pem" -crl_reason keyCompromise
ossl ca -config "$WORK/root/ca.cnf" -batch -cert "$DIR/ca.pem" -keyfile "$DIR/ca.key" \
     -gencrl -crldays 3650 -out "$DIR/crl-ed25519-revoked.pem"
chmod 0644 -- "$DIR/crl-ed25519-revoked.pem"
echo "made $DIR/crl-ed25519-revoked.pem (root CA CRL, revokes TEST-REVOKED and TEST-ED25519)"

# --- foreign CA and its agency -------------------------------------------
make_root foreign "$DIR/foreign-ca.pem" "$DIR/foreign-ca.key" \
    "/O=Foreign Test PKI/CN=Foreign Test Root CA"
issue foreign FOREIGN-AGENCY ec "/C=LV/O=Foreign Test Agency/CN=FOREIGN-AGENCY" \
    "$(agency_san FOREIGN-AGENCY)" clientAuth

echo "development PKI ready in $DIR"
