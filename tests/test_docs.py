"""The documentation's links and path mentions point at files that exist; every page is in the index."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
MENTION = re.compile(r"\bdocs/[\w./-]+\.md\b")


def _relative_links(text: str) -> list[str]:
    out = []
    for target in LINK.findall(text):
        target = target.split("#", 1)[0]
        if target and not re.match(r"^[a-z]+:", target):
            out.append(target)
    return out


def test_relative_links_resolve():
    broken = [f"{p.relative_to(ROOT)} -> {t}" for p in PAGES for t in _relative_links(p.read_text())
              if not (p.parent / t).exists()]
    assert broken == []


def test_mentioned_doc_pages_exist():
    texts = PAGES + sorted((ROOT / "simulator").rglob("*.py")) + sorted((ROOT / "calibration").rglob("*.py"))
    missing = sorted({f"{p.relative_to(ROOT)}: {m}" for p in texts for m in MENTION.findall(p.read_text())
                      if not (ROOT / m).exists()})
    assert missing == []


def test_index_lists_every_page():
    index = (DOCS / "README.md").read_text()
    listed = {(DOCS / t).resolve() for t in _relative_links(index)}
    pages = {p.resolve() for p in DOCS.rglob("*.md") if p.name != "README.md"}
    assert pages - listed == set()


def test_checker_sees_a_broken_link():
    assert _relative_links("see [x](guide/nope.md#a) and [y](https://example.com) [z](#top)") == ["guide/nope.md"]
