"""scripts/check_contract.sh (run by `make lint`) and scripts/release_contract.sh, in a scratch
git repository holding a copy of protos/: a compatible change passes, a breaking one fails
against the released tag and, without a tag, against the previous commit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIELD = "  double longitude = 2;"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=60)
    return done.stdout.strip()


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "protos", repo / "protos")
    shutil.copy(REPO / "buf.yaml", repo / "buf.yaml")
    (repo / "scripts").mkdir()
    for script in ("check_contract.sh", "release_contract.sh"):
        shutil.copy(REPO / "scripts" / script, repo / "scripts" / script)
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "contract")
    return repo


def run(repo: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    buf = shutil.which("buf") or str(REPO / ".venv" / "bin" / "buf")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo.parent), "BUF": buf,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["bash", f"scripts/{script}", *args], cwd=repo, capture_output=True, text=True,
                          timeout=120, check=False, env=env)


def change(repo: Path, old: str, new: str, message: str) -> None:
    proto = repo / "protos" / "smartcity" / "v1" / "common.proto"
    text = proto.read_text()
    assert old in text
    proto.write_text(text.replace(old, new))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", message)


def test_a_breaking_change_fails_against_the_previous_commit_without_a_release(scratch: Path) -> None:
    change(scratch, FIELD, "  float longitude = 2;", "break")
    result = run(scratch, "check_contract.sh")
    assert result.returncode != 0
    assert "the previous commit of main" in result.stdout
    assert 'changed type from "double" to "float"' in result.stdout + result.stderr


def test_the_release_tag_is_what_later_changes_are_checked_against(scratch: Path) -> None:
    released = run(scratch, "release_contract.sh")
    assert released.returncode == 0, released.stderr
    assert git(scratch, "tag", "--list", "contract-v*") == "contract-v1"
    change(scratch, FIELD, FIELD + "\n  double altitude_m = 3;", "compatible: a new field")
    change(scratch, "double altitude_m = 3;", "double altitude_m = 4;", "still compatible with v1")
    ok = run(scratch, "check_contract.sh")
    assert ok.returncode == 0 and "contract-v1" in ok.stdout, ok.stdout + ok.stderr
    change(scratch, FIELD, "  string longitude = 2;", "break against the release")
    broken = run(scratch, "check_contract.sh")
    assert broken.returncode != 0 and "contract-v1" in broken.stdout
    refused = run(scratch, "release_contract.sh")
    assert refused.returncode != 0 and git(scratch, "tag", "--list", "contract-v*") == "contract-v1"
