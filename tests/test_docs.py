"""README.md stays a manual under its limit, no relative link in the docs is dead, design.md names every module,
and nothing cites reference material outside the repository.

Fast: reads text files only, imports nothing of the package.
"""
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
DOCS = ROOT / 'docs'
README_MAX_LINES = 350

# [text](target) and ![alt](target), with an optional "title"; the target may be in <...>.
_LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_FENCE = re.compile(r'^(```|~~~).*?^\1', re.S | re.M)
_CODE_SPAN = re.compile(r'`[^`\n]*`')
_EXTERNAL = re.compile(r'^(https?:|mailto:)', re.I)


def _markdown_files():
    return [README] + sorted(DOCS.rglob('*.md'))


def _relative_links(path):
    """The relative link targets of a Markdown file, outside code blocks and code spans."""
    text = _FENCE.sub('', path.read_text(encoding='utf-8'))
    text = _CODE_SPAN.sub('', text)
    for target in _LINK.findall(text):
        if _EXTERNAL.match(target):
            continue
        file_part = target.split('#', 1)[0]
        if file_part:  # a bare '#anchor' points into the same file
            yield target, file_part


def test_readme_within_line_limit():
    n = len(README.read_text(encoding='utf-8').splitlines())
    assert n <= README_MAX_LINES, (
        f'README.md has {n} lines (limit {README_MAX_LINES}): move reference text to docs/')


@pytest.mark.parametrize('path', _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_alive(path):
    dead = [target for target, file_part in _relative_links(path)
            if not (path.parent / file_part).exists()]
    assert not dead, f'{path.relative_to(ROOT)}: dead relative links {dead}'


def test_docs_index_lists_every_page():
    index = DOCS / 'README.md'
    linked = {(index.parent / file_part).resolve() for _, file_part in _relative_links(index)}
    pages = {p.resolve() for p in DOCS.rglob('*.md') if p != index}
    missing = sorted(str(p.relative_to(ROOT)) for p in pages - linked)
    assert not missing, f'docs/README.md does not list {missing}'


def design_layout_modules():
    """The module paths listed in docs/design.md's module table (a folder line, then its files indented)."""
    text = (DOCS / 'design.md').read_text(encoding='utf-8')
    block = text.split('Every module, one concept each', 1)[1].split('```', 2)[1]
    listed, folder = set(), None
    for line in block.splitlines():
        if line.startswith('parnet_det/'):
            folder = line.strip()
        elif line.startswith('  ') and line.split()[0].endswith('.py'):
            listed.add(folder + line.split()[0])
    return listed


def test_design_names_every_module():
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / 'parnet_det').rglob('*.py') if p.name != '__init__.py'}
    listed = design_layout_modules()
    assert not modules - listed, f'docs/design.md does not describe {sorted(modules - listed)}'
    assert not listed - modules, f'docs/design.md describes modules that do not exist: {sorted(listed - modules)}'


# The material docs/reference/ was written from lies outside the repository, where users do not have it.
_OUTSIDE_REFERENCE = re.compile(r'\.\./shared/|shared/reference')
_SKIPPED_DIRS = {'.git', '.venv', '__pycache__', '.pytest_cache', '.ruff_cache', 'work_dirs'}
_TEXT_SUFFIXES = {'.py', '.md', '.sh', '.yml', '.yaml', '.toml', '.txt', '.cfg', ''}


def _repository_text_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [name for name in dirs if name not in _SKIPPED_DIRS and not (folder == str(ROOT) and name == 'data')]
        for name in files:
            path = Path(folder) / name
            if path.suffix in _TEXT_SUFFIXES and path != Path(__file__).resolve():  # this file names the pattern
                yield path


def test_nothing_cites_reference_material_outside_the_repository():
    citing = sorted(str(path.relative_to(ROOT)) for path in _repository_text_files()
                    if _OUTSIDE_REFERENCE.search(path.read_text(encoding='utf-8', errors='replace')))
    assert not citing, f'{citing} cite ../shared; cite docs/reference/ (the facts in the project\'s words) instead'


def test_the_citation_check_finds_a_citation():
    # The check itself can fail: both forms of a citation are found.
    assert _OUTSIDE_REFERENCE.search('facts in ../shared/reference/yolov4_csp.md section 4')
    assert _OUTSIDE_REFERENCE.search('see /work/shared/reference/README.md')
    assert not _OUTSIDE_REFERENCE.search('docs/reference/yolov4_csp.md §4.6; the shared norm')
