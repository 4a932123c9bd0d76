"""The documentation: the site builds with every link and anchor resolving, and the README stays a
short front page whose links all lead somewhere."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 150
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    assert importlib.util.find_spec("mkdocs"), "mkdocs is not installed: pip install -e '.[dev]'"
    # No --quiet: it hides the warnings that --strict counts, and a broken link would pass.
    command = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    command += ["--config-file", str(config), "--site-dir", str(site)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _relative_links(markdown: Path) -> list[str]:
    """Link targets that point into the repository (no URL, no bare #anchor), code left out."""
    text = INLINE_CODE.sub("", FENCED.sub("", markdown.read_text(encoding="utf-8")))
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^(#|[a-z][a-z0-9+.-]*:)", t)]


def test_site_builds_strictly(tmp_path: Path) -> None:
    done = _mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    for page in ("index.html", "cli/index.html", "models/pets-default/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_strict_build_fails_on_a_broken_anchor(tmp_path: Path) -> None:
    """The check above can fail: the same site with one link to a heading that does not exist."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    with (tmp_path / "docs" / "index.md").open("a", encoding="utf-8") as f:
        f.write("\n[broken](cli.md#no-such-heading)\n")
    done = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "no-such-heading" in done.stdout + done.stderr


def test_readme_is_a_short_front_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    first_block = FENCED.search(readme)
    assert first_block, "README.md shows no commands"
    assert "make demo" in first_block.group(0) and "make test" in first_block.group(0)


def test_readme_and_benchmark_links_resolve() -> None:
    for markdown in (ROOT / "README.md", ROOT / "benchmarks" / "README.md"):
        links = _relative_links(markdown)
        assert links, f"{markdown}: no relative links found"
        missing = [t for t in links if not (markdown.parent / t.split("#")[0]).exists()]
        assert not missing, f"{markdown.relative_to(ROOT)}: links to nothing: {missing}"


def test_relative_links_are_found_and_checked(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "[a](docs/a.md) ![b](img/b.png) [web](https://x.org) [here](#top) `[c](c.md)`\n"
        "```\n[d](d.md)\n```\n[e](e.md#part)\n",
        encoding="utf-8",
    )
    assert _relative_links(page) == ["docs/a.md", "img/b.png", "e.md#part"]
