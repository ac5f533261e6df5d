"""Provenance of results: the commit, versions and device are recorded."""

from __future__ import annotations

import subprocess

from rmlc.provenance import describe_device, git_commit, provenance, provenance_markdown


def test_provenance_names_commit_versions_device_and_command() -> None:
    record = provenance("rmlc reproduce table3")
    assert record["command"] == "rmlc reproduce table3"
    assert {"rmlc", "torch", "numpy", "python"} <= set(record["versions"])
    assert record["device"].startswith("cpu: ")
    lines = "\n".join(provenance_markdown(record))
    assert "`rmlc reproduce table3`" in lines and record["commit"] in lines


def test_git_commit_of_a_checkout_and_outside_one(tmp_path) -> None:
    assert git_commit(tmp_path) == "unknown"
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("one\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "add", "a.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("two\n")
    assert git_commit(tmp_path) == head + "-dirty"
    # Only changes under the folder count: results written elsewhere leave the code clean.
    package, results = tmp_path / "package", tmp_path / "results"
    package.mkdir(), results.mkdir()
    (package / "code.py").write_text("x = 1\n")
    (results / "runs.csv").write_text("a\n")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "b"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    (results / "runs.csv").write_text("a\nb\n")
    assert git_commit(package) == head
    (package / "code.py").write_text("x = 2\n")
    assert git_commit(package) == head + "-dirty"


def test_describe_device_on_cpu() -> None:
    assert "cores" in describe_device("cpu")
