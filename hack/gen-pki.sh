#!/usr/bin/env bash
# Usage: hack/gen-pki.sh DIR NODE_IP SERVICE_IP NODE_NAME...
# Writes a throwaway CA, the serving/client certificates of the test cluster and one
# kubeconfig per client into DIR. Identities are chosen so that only built-in authorization
# is needed: admin and the apiserver's kubelet client are in system:masters, the kubelet is
# system:node:NODE_NAME (Node authorizer), one per node, the other components have bootstrap RBAC bindings.
set -euo pipefail
DIR=$1 NODE_IP=$2 SVC_IP=$3
shift 3
NODE_NAMES=("$@")
DAYS=3650
mkdir -p "$DIR/pki" "$DIR/etc"
cd "$DIR/pki"

openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days $DAYS -subj "/CN=seccompd-e2e-ca" -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"

cert() { # NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
  local name=$1 subj=$2 eku=$3 san=${4:-}
  openssl genrsa -out "$name.key" 2048 2>/dev/null
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days $DAYS -sha256 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
# The apiserver is dialled as 127.0.0.1 (admin), NODE_IP (components) and SVC_IP (pods).
cert apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$SVC_IP"
cert admin                    "/O=system:masters/CN=kubernetes-admin"              clientAuth
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert kube-controller-manager  "/CN=system:kube-controller-manager"                 clientAuth
cert kube-scheduler           "/CN=system:kube-scheduler"                          clientAuth
cert kube-proxy               "/CN=system:kube-proxy"                              clientAuth
for node in "${NODE_NAMES[@]}"; do
  cert "kubelet-$node" "/O=system:nodes/CN=system:node:$node" clientAuth
done
# Service-account token signing key pair.
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
chmod 600 ./*.key
rm -f ca.srl

kubeconfig() { # OUT SERVER CLIENT
  local out=$1 server=$2 client=$3
  cat >"$out" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: seccompd-e2e
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $client
  user:
    client-certificate-data: $(base64 -w0 "$client.crt")
    client-key-data: $(base64 -w0 "$client.key")
contexts:
- name: seccompd-e2e
  context: {cluster: seccompd-e2e, user: $client}
current-context: seccompd-e2e
KUBECONFIG
  chmod 600 "$out"
}
kubeconfig "$DIR/kubeconfig" "https://127.0.0.1:6443" admin
for c in kube-controller-manager kube-scheduler kube-proxy "${NODE_NAMES[@]/#/kubelet-}"; do
  kubeconfig "$DIR/etc/$c.kubeconfig" "https://$NODE_IP:6443" "$c"
done
