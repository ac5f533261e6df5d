"""The documentation holds together: every relative link of the README and of ``docs/``
reaches a file and, where it names one, a heading of that file; the site's navigation lists
every page; every module of the API reference imports."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (GitHub's and MkDocs' rule for plain
    words: lower case, punctuation dropped, spaces to hyphens)."""
    headings = [
        line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")
    ]
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def _relative_links(path: Path) -> list[str]:
    return [link for link in LINK.findall(path.read_text()) if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_reaches_its_file_and_heading(page: Path) -> None:
    broken = []
    for link in _relative_links(page):
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link} (no file {path})")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{link} (no heading #{anchor} in {path.name})")
    assert broken == [], f"{page.name}: {broken}"


def test_the_site_lists_every_page_and_documents_importable_modules() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = {next(iter(entry.values())) for entry in config["nav"]}
    assert listed == {page.name for page in (ROOT / "docs").glob("*.md")}
    modules = re.findall(r"^::: ([\w.]+)$", (ROOT / "docs" / "api.md").read_text(), re.MULTILINE)
    assert "rmlc.losses" in modules and "rmlc.train.config" in modules
    for module in modules:
        importlib.import_module(module)


@pytest.mark.slow  # mkdocs in a fresh process
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """``mkdocs build --strict`` (the docs extra, part of the test extra): a broken link, a
    page missing from the navigation or an API reference that does not resolve fails."""
    import subprocess
    import sys

    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def _readme_run_folders() -> list[str]:
    """The run folder of every training example of the README: ``--out`` (or the config
    file's ``out``, or the default ``runs/rmlc``) of each ``rmlc train`` command, and each
    ``out="..."`` of the Python examples."""
    folders = []
    text = (ROOT / "README.md").read_text()
    for language, block in re.findall(r"```(bash|python)\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            code = line.split("#")[0]
            if language == "python":
                folders += re.findall(r"\bout=\"([^\"]+)\"", code)
            elif re.search(r"\brmlc train\b", code):
                out, config = re.search(r"--out (\S+)", code), re.search(r"--config (\S+)", code)
                if out:
                    folders.append(out.group(1))
                elif config:
                    folders.append(yaml.safe_load((ROOT / config.group(1)).read_text())["out"])
                else:
                    folders.append("runs/rmlc")  # TrainConfig's default
    return folders


def test_the_readme_trains_each_example_into_a_folder_of_its_own() -> None:
    """A run refuses a folder holding another run: the examples must not share one."""
    folders = _readme_run_folders()
    assert len(folders) >= 8 and "runs/rmlc" in folders  # the set-up's bare rmlc train
    repeated = sorted({folder for folder in folders if folders.count(folder) > 1})
    assert repeated == [], f"README examples share run folders: {repeated}"
