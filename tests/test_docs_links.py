"""The documentation lives in the repository (issue 12): every relative link of README.md, docs/
and the other Markdown files resolves to a file inside the repository (and its #anchor to a
heading there), no link leaves the repository (no URL scheme, no absolute path, no path above
the root), and no page points at the reference notes outside it (../shared, /work/...).
Every page of docs/ is listed in docs/README.md, which README.md links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import ROOT

SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache"}


def _markdown_files() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*.md")):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        out.append(path)
    return out


FILES = _markdown_files()
DOCS = sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.I)
AUTOLINK = re.compile(r"<((?:[a-z][a-z0-9+.-]*):[^>\s]*)>", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)

# The reference notes the project was written from are not part of the repository: a page
# must not send a reader to them.
OUTSIDE_TEXT = re.compile(r"\.\./shared\b|/work/|\bshared/docs\b")
NOTE_NAMES = ("procedure.md", "asm-notes.md", "pulumi-notes.md", "trust-model.md")


def _no_fences(text: str) -> str:
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _prose(text: str) -> str:
    """The text with fenced code blocks and code spans removed (links there are not links)."""
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), _no_fences(text))


def _links(text: str) -> list[str]:
    prose = _prose(text)
    found = [m.group(1) for m in INLINE_LINK.finditer(prose)]
    found += [m.group(1) for m in REFERENCE_DEF.finditer(prose)]
    found += [m.group(1) for m in HTML_LINK.finditer(prose)]
    found += [m.group(1) for m in AUTOLINK.finditer(prose)]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to '-'."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[*_~]", lambda m: m.group(0) if m.group(0) == "_" else "", text)
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _no_fences(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_the_files_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert {"README.md", "docs/README.md", "docs/ca-files.md", "docs/pulumi-setup.md", "docs/rehearsal.md", "docs/promotion.md"} <= names


def test_slugs_are_githubs():
    # transcribed from GitHub's rendering of such headings
    assert slug("Python 3.11") == "python-311"
    assert slug("The organization is always `organization`") == "the-organization-is-always-organization"
    assert slug("What `pulumi stack init` does to a stack file") == "what-pulumi-stack-init-does-to-a-stack-file"
    assert slug("Start here (a fresh clone, no cluster needed)") == "start-here-a-fresh-clone-no-cluster-needed"
    assert slug("Istio on GKE: from `istio-ca-secret`") == "istio-on-gke-from-istio-ca-secret"


def test_links_are_found_outside_code_only():
    text = "see [a](a.md), `[b](b.md)`, <https://x.example/>,\n[c]: ../c.md\n```\n[d](d.md)\n```\n<a href='e.md'>e</a>"
    assert _links(text) == ["a.md", "../c.md", "e.md", "https://x.example/"]


def link_problems(path: Path, text: str) -> list[str]:
    problems = []
    for target in _links(text):
        if not target:
            problems.append("an empty link")
            continue
        if SCHEME.match(target) or target.startswith("//"):
            problems.append(f"{target}: links outside the repository")
            continue
        if target.startswith("/"):
            problems.append(f"{target}: an absolute path, outside the repository")
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path.resolve()
        if ROOT.resolve() not in (dest, *dest.parents):
            problems.append(f"{target}: resolves outside the repository ({dest})")
            continue
        if not dest.exists():
            problems.append(f"{target}: no such file or directory")
            continue
        if anchor:
            if dest.suffix != ".md":
                problems.append(f"{target}: an anchor into a file that is not Markdown")
            elif anchor not in anchors(dest):
                problems.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT.resolve())}")
    return problems


def outside_problems(text: str) -> list[str]:
    problems = [f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in OUTSIDE_TEXT.finditer(text)]
    for name in NOTE_NAMES:
        if name in text and not any(p.name == name for p in FILES):
            problems.append(f"names {name}, which is not in the repository")
    return problems


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves_inside_the_repository(path):
    assert link_problems(path, path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_nothing_points_outside_the_repository(path):
    assert outside_problems(path.read_text(encoding="utf-8")) == []


def test_every_docs_page_is_in_the_index_and_the_readme_links_the_index():
    index = ROOT / "docs" / "README.md"
    listed = {(index.parent / t.partition("#")[0]).resolve() for t in _links(index.read_text(encoding="utf-8"))}
    assert [p.name for p in DOCS if p != index and p.resolve() not in listed] == []
    readme = {t.partition("#")[0] for t in _links((ROOT / "README.md").read_text(encoding="utf-8"))}
    assert "docs/README.md" in readme
    for page in DOCS:
        if page != index:
            assert "README.md" in {t.partition("#")[0] for t in _links(page.read_text(encoding="utf-8"))}, f"{page.name} links back to the index"


def test_the_checker_catches_what_it_must():
    """The checks above can fail: a page with each kind of bad link is refused."""
    page = ROOT / "docs" / "README.md"
    bad = "[x](../../outside.md) [y](https://example.com/) [z](/etc/passwd) [w](missing.md) [v](route.md#no-such-heading) [u](route.md#positions)"
    problems = link_problems(page, bad)
    assert [p.split(":", 1)[0] if not p.startswith("https") else "https://example.com/" for p in problems] == [
        "../../outside.md", "https://example.com/", "/etc/passwd", "missing.md", "route.md#no-such-heading",
    ]
    assert outside_problems("see ../shared/docs/procedure.md and /work/notes") == [
        "line 1: ../shared", "line 1: /work/", "names procedure.md, which is not in the repository",
    ]


def test_the_rehearsal_report_sends_readers_to_the_docs(capsys):
    """The HTML report a user opens names the page in docs/, not a note outside the repository."""
    from meshca import cli

    rc = cli.main(["rehearse", "--clusters", "1", "--namespaces", "1", "--workloads", "1", "--quiet", "--report", "-"])
    page, _ = capsys.readouterr()
    assert rc == 0 and "(docs/rehearsal.md, the model's assumptions)" in page
    assert "the-models-assumptions" in anchors(ROOT / "docs" / "rehearsal.md")  # the section it names exists
    assert outside_problems(page) == []


def test_pages_named_by_the_program_exist():
    """Fixes, help texts and reports that send the user to docs/ name pages that exist."""
    sources = [ROOT / "meshca" / "messages.yaml", ROOT / "Pulumi.yaml", *sorted((ROOT / "meshca").rglob("*.py"))]
    named = {m.group(0) for path in sources for m in re.finditer(r"(?<![\w/])docs/[\w.-]+\.md\b", path.read_text(encoding="utf-8"))}
    assert {"docs/config.md", "docs/running.md", "docs/rehearsal.md"} <= named
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []
