#!/usr/bin/env bash
# Releases the gRPC/Kafka contract (protos/) as it is at a commit of main: tags it
# contract-v<N+1> (annotated), after checking it does not break the previous release. From
# then on `make lint` (scripts/check_contract.sh) compares every change against that tag.
#
#   bash scripts/release_contract.sh [REF]     # default HEAD; push the tag with `git push --tags`
#
# A change that must break callers is not released here: it goes into a new package
# (protos/smartcity/v2), served beside v1 until the callers moved.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ref="${1:-HEAD}"
say() { printf '[release-contract] %s\n' "$*"; }
commit="$(git rev-parse --verify "$ref^{commit}")"
last="$(git tag --list 'contract-v*' --sort=-v:refname | head -n1)"
if [ -n "$last" ]; then
  [ "$(git rev-parse "$last^{commit}")" != "$commit" ] || { say "$last already tags $ref"; exit 0; }
  CONTRACT_AGAINST="$last" bash scripts/check_contract.sh
  next="contract-v$(( ${last#contract-v} + 1 ))"
else
  next="contract-v1"
fi
git tag -a "$next" "$commit" -m "contract $next: protos/ as of $(git log -1 --format=%h "$commit")"
say "tagged $next at ${commit:0:12}; publish it with: git push origin $next"
