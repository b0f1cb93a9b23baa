#!/bin/sh
# A throw-away CA and a server certificate it signed for 127.0.0.1 (an IP
# SAN), for the TLS tests: make_test_ca.sh DIR writes ca.pem, server.pem
# and server.key there.
set -eu
dir=$1
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj /CN=agentwire-test-ca
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days 2 -extfile san.ext
