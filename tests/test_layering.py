"""The package's layers: each imports only the layers below it, and nothing imports in a cycle; the benchmark's
public names are the ones the tools run."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'parnet_det'
TOOLS = PACKAGE.parent / 'tools'
# Bottom to top (docs/design.md). Layers on one line may not import each other.
# benchmark/ sits beside apis/: it builds detectors through models/ and its config helpers are utils/'.
LAYERS = [('utils', ), ('models', ), ('datasets', 'engine', 'convert', 'analysis'), ('inference', ), ('deploy', ),
          ('apis', 'benchmark')]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def _subpackage(module: Path) -> str:
    return module.relative_to(PACKAGE).parts[0]


def _imported_subpackages(module: Path) -> set:
    """parnet_det subpackages a module imports, absolute or relative, at any place in the file."""
    own = module.relative_to(PACKAGE).with_suffix('').parts
    imported = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = own[:len(own) - node.level]
                parts = (*base, *(node.module or '').split('.')) if node.module else base
                names = [(*parts, alias.name) for alias in node.names] if not node.module else [parts]
            elif node.module == 'parnet_det':  # from parnet_det import apis
                names = [(alias.name, ) for alias in node.names]
            else:
                names = [tuple(node.module.split('.'))[1:]] if node.module.startswith('parnet_det.') else []
        elif isinstance(node, ast.Import):
            names = [tuple(alias.name.split('.'))[1:] for alias in node.names if alias.name.startswith('parnet_det.')]
        else:
            continue
        imported |= {parts[0] for parts in names if parts and parts[0] in LEVEL}
    return imported


def test_every_module_imports_only_layers_below_its_own():
    offences = []
    for module in sorted(PACKAGE.rglob('*.py')):
        if module.parent == PACKAGE:
            continue  # __init__.py, registry.py, mmpretrain_registration.py: the top, where registration happens
        layer = _subpackage(module)
        for target in _imported_subpackages(module) - {layer}:
            if LEVEL[target] >= LEVEL[layer]:
                offences.append(f'{module.relative_to(PACKAGE)} ({layer}) imports {target}')
    assert not offences, 'imports against the layering:\n' + '\n'.join(offences)


def test_every_subpackage_has_a_layer():
    subpackages = {path.name for path in PACKAGE.iterdir() if (path / '__init__.py').is_file()}
    assert subpackages == set(LEVEL)


@pytest.mark.parametrize('layer, source, expected', [
    # An inference module importing apis, written both ways.
    ('inference', 'from ..apis import load_config\nimport parnet_det.benchmark.runner\n', {'apis', 'benchmark'}),
    # From the package itself (switch_to_deploy is no subpackage), absolute and relative.
    ('models', 'from parnet_det import apis, switch_to_deploy\nfrom .. import deploy\n', {'apis', 'deploy'}),
])
def test_the_check_sees_every_form_of_import(tmp_path, monkeypatch, layer, source, expected):
    # The check itself can fail.
    fake = tmp_path / 'parnet_det'
    (fake / layer).mkdir(parents=True)
    module = fake / layer / 'module.py'
    module.write_text(source)
    monkeypatch.setattr(__import__(__name__, fromlist=['PACKAGE']), 'PACKAGE', fake)
    assert _imported_subpackages(module) == expected


def _names_imported_from(module: str, sources) -> set:
    """The names ``from <module> import ...`` brings into any of ``sources``."""
    return {alias.name for source in sources for node in ast.walk(ast.parse(source.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module == module for alias in node.names}


def test_the_benchmark_exports_what_the_tools_run():
    # A small surface: the tools' entry points; the parts they are built from are imported from their modules.
    init = ast.parse((PACKAGE / 'benchmark' / '__init__.py').read_text())
    exported = next(set(ast.literal_eval(node.value)) for node in init.body
                    if isinstance(node, ast.Assign) and node.targets[0].id == '__all__')
    assert exported == _names_imported_from('parnet_det.benchmark', TOOLS.rglob('*.py'))
