"""The Markdown files' relative links: each leads to a file of the project, and
each #anchor to a heading of the file it names, as GitHub names headings. No
stack needed.

The README links to the pages in docs/, and they to each other and to the
code: a page moved or a heading renamed breaks a link silently, so this test
follows every one.
"""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from project.env import BASE_DIR
from tests.project_files import project_files

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
# A code span: backticks, then anything but a blank line, then as many backticks.
CODE_SPAN = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)\1", re.DOTALL)
# [text](target) or ![text](target), with an optional "title".
LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:...
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:name|id)=["']([^"']+)["']""")


def markdown_files() -> list[Path]:
    return project_files("*.md")


def unfenced(text: str) -> str:
    """The text with its fenced code blocks blanked: their hashes and brackets
    are code, not headings or links. Every line keeps its number."""
    lines, fence = [], None
    for line in text.split("\n"):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening[1]
            lines.append("")
        elif fence is not None:
            if line.strip().startswith(fence[0] * len(fence)):
                fence = None
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """The text without its code blocks and code spans, where nothing is a link."""
    return CODE_SPAN.sub(lambda span: "\n" * span[0].count("\n"), unfenced(text))


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: its text (a link's, not its target),
    lowercased, without punctuation but hyphens and underscores, spaces made
    hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor of a Markdown text: its headings' (a repeated one gets -1,
    -2... as GitHub numbers them), and any <a id="..."> or <a name="...">."""
    found, seen = set(), {}
    for line in unfenced(text).split("\n"):
        heading = HEADING.match(line)
        if heading:
            anchor = github_anchor(heading[1])
            repeat = seen.get(anchor, 0)
            seen[anchor] = repeat + 1
            found.add(f"{anchor}-{repeat}" if repeat else anchor)
    return found | set(HTML_ANCHOR.findall(text))


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of each link in the text's prose."""
    body = prose(text)
    return [(body.count("\n", 0, link.start()) + 1, link[2]) for link in LINK.finditer(body)]


def broken_links(path: Path, root: Path = BASE_DIR) -> list[str]:
    """What is wrong with each relative link of one Markdown file of `root`."""
    root = root.resolve()
    broken = []
    name = path.relative_to(root)
    for line, target in links(path.read_text()):
        if SCHEME.match(target):
            continue  # http(s), mailto: not the project's files
        where = f"{name}:{line}: ({target})"
        file, _, anchor = target.partition("#")
        file = unquote(file)
        if not file:
            linked = path
        elif file.startswith("/"):
            linked = root / file.lstrip("/")  # GitHub: from the repository's root
        else:
            linked = path.parent / file
        linked = linked.resolve()
        if not linked.is_relative_to(root):
            broken.append(f"{where}: leads out of the repository")
        elif not linked.exists():
            broken.append(f"{where}: there is no {linked.relative_to(root)}")
        elif anchor and linked.suffix != ".md":
            broken.append(f"{where}: an anchor into a file that is not Markdown")
        elif anchor and unquote(anchor) not in anchors(linked.read_text()):
            broken.append(f"{where}: no heading gives #{anchor}")
    return broken


def test_the_markdown_files_are_found():
    # Guards the listing: with no file found, the test below would pass vacuously.
    found = {str(path.relative_to(BASE_DIR)) for path in markdown_files()}
    assert {"README.md", "docs/development.md", "deploy/kubernetes/README.md"} <= found


def test_every_relative_link_leads_to_a_file_and_its_heading():
    broken = [problem for path in markdown_files() for problem in broken_links(path)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_links_every_page_of_the_docs():
    readme = BASE_DIR / "README.md"
    linked = {
        (readme.parent / target.partition("#")[0]).resolve()
        for _, target in links(readme.read_text())
        if not SCHEME.match(target)
    }
    pages = {path.resolve() for path in BASE_DIR.joinpath("docs").glob("*.md")}
    pages.add((BASE_DIR / "deploy" / "kubernetes" / "README.md").resolve())
    assert {str(page.relative_to(BASE_DIR.resolve())) for page in pages - linked} == set()


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Errors (Sentry)", "errors-sentry"),
        ("`make dev`", "make-dev"),
        ("How it keeps Compose's promises", "how-it-keeps-composes-promises"),
        ("Dependencies, and without Docker", "dependencies-and-without-docker"),
        ("Beyond one machine: Kubernetes", "beyond-one-machine-kubernetes"),
        ("TASK_SCHEDULES and [the worker](worker.md)", "task_schedules-and-the-worker"),
    ],
)
def test_anchors_are_named_as_github_names_them(heading, anchor):
    assert github_anchor(heading) == anchor


def test_anchors_of_repeated_headings_are_numbered_and_code_is_no_heading():
    text = "# Logs\n\n## Logs\n\n```sh\n# not a heading\n```\n\n## `LOG_FORMAT`\n"
    assert anchors(text) == {"logs", "logs-1", "log_format"}


def test_a_broken_link_or_anchor_is_found(tmp_path):
    # The check above must be able to fail: a page with a link of each kind.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Here\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[fine](docs/a.md#here) [self](#b) [web](https://example.com/x#y)\n"
        "[no file](docs/none.md) [no heading](docs/a.md#there) `[code](none.md)`\n"
        "\n```\n[fenced](none.md)\n```\n\n# B\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "README.md:2: (docs/none.md): there is no docs/none.md",
        "README.md:2: (docs/a.md#there): no heading gives #there",
    ]
