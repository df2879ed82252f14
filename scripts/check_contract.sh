#!/usr/bin/env bash
# `buf breaking`: fails when protos/ would break a caller of the last released contract.
# Offline (the repository's own history), run by `make lint`. What it compares against, first
# that exists:
#   1. CONTRACT_AGAINST, when set: any git ref (a tag, a commit, main, HEAD~1)
#   2. the newest release tag contract-v<N> (scripts/release_contract.sh makes one)
#   3. on a branch: where it left main (git merge-base HEAD main)
#   4. on main: the previous commit of main (HEAD^, first parent: main before the last merge)
# A deliberate break is released as a new package version (smartcity.v2), never by editing v1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# The buf command: the locked dev dependency (PyPI's buf), unless BUF names another.
BUF="${BUF:-${UV:-uv} run --frozen buf}"
say() { printf '[contract] %s\n' "$*"; }

git rev-parse --git-dir >/dev/null 2>&1 || { say "not a git checkout: nothing to compare against"; exit 0; }

against="${CONTRACT_AGAINST:-}"
why="CONTRACT_AGAINST"
if [ -z "$against" ]; then
  against="$(git tag --list 'contract-v*' --sort=-v:refname | head -n1)"
  why="the last released contract"
fi
if [ -z "$against" ]; then
  branch="$(git rev-parse --abbrev-ref HEAD)"
  if [ "$branch" != main ] && git rev-parse --verify -q main >/dev/null \
      && [ "$(git merge-base HEAD main)" != "$(git rev-parse HEAD)" ]; then
    against="$(git merge-base HEAD main)"
    why="where this branch left main"
  elif git rev-parse --verify -q 'HEAD^' >/dev/null; then
    against="$(git rev-parse 'HEAD^')"
    why="the previous commit of main"
  else
    say "no release tag and no previous commit: nothing to compare against"
    exit 0
  fi
fi
commit="$(git rev-parse --verify -q "$against^{commit}")" || { say "ERROR: no such ref: $against" >&2; exit 1; }
if ! git cat-file -e "$commit:protos" 2>/dev/null; then
  say "$against ($why) has no protos/: nothing to compare against"
  exit 0
fi
# buf reads the ref from the repository's git directory (a worktree's .git is only a pointer).
git_dir="$(git rev-parse --path-format=absolute --git-common-dir)"
say "buf breaking against $against ($why, ${commit:0:12})"
$BUF breaking --against "$git_dir#ref=$commit"
