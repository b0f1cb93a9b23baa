#!/bin/sh
# A cluster's CA and the certificates of its nodes, as the README shows
# them, plus a node certificate from another CA (a stranger):
#   make_cluster_certs.sh DIR NODE...
# writes DIR/ca.pem, DIR/NODE.pem and DIR/NODE.key for each NODE, and
# DIR/stranger.pem and DIR/stranger.key signed by DIR/other-ca.pem.
set -eu
dir=$1
shift
cd "$dir"
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$1.key" -out "$1.pem" -subj "/CN=$1" 2>/dev/null
}
node() { # node NAME CA
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
    -out "$1.pem" 2>/dev/null
  rm "$1.csr"
}
ca ca
ca other-ca
for n in "$@"; do node "$n" ca; done
node stranger other-ca
