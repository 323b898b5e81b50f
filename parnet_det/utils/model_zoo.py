"""The model zoo: every config family's ``metafile.yml`` (mmdet's model-index format), imported by the top-level
``model-index.yml``, and the tables of the READMEs rendered from them, so that a README says only what a metafile
does (one source).

A README holds each table between ``<!-- model-zoo:KIND -->`` and ``<!-- model-zoo:end -->``; a family's
README (beside its metafile) holds ``models`` and ``speed``, the top-level README ``families`` and ``entry-points``.
"""
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Sequence

import yaml

from .fileio import atomic_write

MODEL_INDEX = 'model-index.yml'
INFERENCE_TIME = 'inference time (ms/im)'
# What the tables read: of a collection, of a model, of a model's Metadata.
COLLECTION_KEYS = ('Name', 'Description', 'README')
MODEL_KEYS = ('Name', 'In Collection', 'Config', 'Metadata')
METADATA_KEYS = ('Architecture', 'Parameters', 'Parameters (training form)')
_BLOCK = re.compile(r'(<!-- model-zoo:(?P<kind>[a-z-]+) -->\n).*?(<!-- model-zoo:end -->)', re.S)


class Family(NamedTuple):
    """One metafile: where it is, its collections and its models, as the YAML has them."""
    metafile: str
    collections: List[dict]
    models: List[dict]

    @property
    def readme(self) -> str:
        return osp.join(osp.dirname(self.metafile), 'README.md')


def read_yaml(path: str) -> dict:
    """A YAML mapping, or a one-line error naming the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist')
    with open(path, encoding='utf-8') as file:
        content = yaml.safe_load(file)
    if not isinstance(content, dict):
        raise ValueError(f'{path} is not a YAML mapping (a model index or metafile has keys at the top)')
    return content


def read_model_zoo(root: str) -> List[Family]:
    """Every family that ``root/model-index.yml`` imports, in its order; a collection or model that lacks a key
    the tables read is a one-line error naming the metafile, the entry and the key."""
    families = []
    for metafile in read_yaml(osp.join(root, MODEL_INDEX)).get('Import', []):
        content = read_yaml(osp.join(root, metafile))
        family = Family(metafile, content.get('Collections', []), content.get('Models', []))
        for collection in family.collections:
            _require(collection, COLLECTION_KEYS, f'{metafile}: collection {collection.get("Name")!r}')
        for model in family.models:
            _require(model, MODEL_KEYS, f'{metafile}: model {model.get("Name")!r}')
            _require(model['Metadata'], METADATA_KEYS, f'{metafile}: the Metadata of model {model["Name"]!r}')
        families.append(family)
    return families


def _require(entry: dict, keys: Sequence[str], what: str) -> None:
    missing = [key for key in keys if key not in entry]
    if missing:
        raise ValueError(f'{what} has no {missing[0]!r}; add it (see the other entries of the file)')


def _millions(count: int) -> str:
    return f'{count / 1e6:.1f}'


def _link(path: str, readme: str) -> str:
    """``path`` (from the repository root) as a Markdown link from ``readme`` (also from the root)."""
    return f'[{osp.basename(path)}]({osp.relpath(path, osp.dirname(readme))})'


def result_text(result: dict) -> str:
    """'48.7 box AP (COCO val2017, 640 px; Scaled-YOLOv4 README)': each metric with where and who says so."""
    metrics = ', '.join(f'{value} {name}' for name, value in result['Metrics'].items())
    return f'{metrics} ({result["Dataset"]} {result["Split"]}, {result["Resolution"]}; {result["Source"]})'


def weights_text(model: dict) -> str:
    """A link to published weights, the command that converts them, or 'none published'."""
    if 'Weights' in model:
        return f'[published]({model["Weights"]})'
    if 'Converted Weights' in model:
        return 'converted: see below'
    return 'none published'


def models_table(family: Family) -> str:
    """The family's model-zoo table: config, entry point, architecture, sizes, published results, weights."""
    lines = ['| config | entry point | backbone | neck / head | params (M), deploy / training | GFLOPs (px) '
             '| published result | weights |', '|---|---|---|---|---|---|---|---|']
    for model in family.models:
        meta = model['Metadata']
        backbone, *rest = meta['Architecture']
        flops = f'{meta["FLOPs"] / 1e9:.1f} ({meta["FLOPs Resolution"]})' if 'FLOPs' in meta else '-'
        results = '; '.join(result_text(result) for result in model.get('Results', [])) or '-'
        aliases = ', '.join(f'`{alias}`' for alias in model.get('Alias', [])) or '-'
        lines.append(f'| {_link(model["Config"], family.readme)} | {aliases} | {backbone} | {" + ".join(rest)} '
                     f'| {_millions(meta["Parameters"])} / {_millions(meta["Parameters (training form)"])} '
                     f'| {flops} | {results} | {weights_text(model)} |')
    converted = [model for model in family.models if 'Converted Weights' in model]
    if converted:
        lines.append('')
        lines += [f'- `{model["Name"]}`: {model["Converted Weights"]["Published"]}; '
                  f'`{model["Converted Weights"]["Command"]}`' for model in converted]
    return '\n'.join(lines)


def speed_table(family: Family) -> str:
    """The measured speed of the family's models: one row per model, hardware and backend, one column per
    input size. 'No speed measured' where none is."""
    timed = [(model, entry) for model in family.models for entry in model['Metadata'].get(INFERENCE_TIME, [])]
    if not timed:
        return 'No speed measured for this family.'
    sizes = sorted({entry['resolution'] for _, entry in timed}, key=lambda size: int(size.split(',')[0][1:]))
    rows: Dict[tuple, Dict[str, float]] = {}
    for model, entry in timed:
        key = (model['Name'], entry['hardware'], entry['backend'], entry['mode'], entry['scope'])
        rows.setdefault(key, {})[entry['resolution']] = entry['value']
    lines = ['| config | hardware | backend | scope | ' + ' | '.join(f'ms at {size}' for size in sizes) + ' |',
             '|---|---|---|---|' + '---|' * len(sizes)]
    for (name, hardware, backend, mode, scope), values in rows.items():
        cells = ' | '.join(f'{values[size]:.0f}' if size in values else '-' for size in sizes)
        lines.append(f'| {name} | {hardware} | {backend}, {mode} | {scope} | {cells} |')
    sources = dict.fromkeys(entry['source'] for _, entry in timed)
    lines += ['', 'Measured in ' + ', '.join(_link(source, family.readme) for source in sources) + '.']
    return '\n'.join(lines)


def families_table(families: Sequence[Family], readme: str) -> str:
    """One row per family: what it is, how many configs, how many with a published result, its README."""
    lines = ['| family | what | configs | with a published result |', '|---|---|---|---|']
    for family in families:
        for collection in family.collections:
            models = [model for model in family.models if model['In Collection'] == collection['Name']]
            published = sum(1 for model in models if model.get('Results'))
            link = osp.relpath(family.readme, osp.dirname(readme))
            lines.append(f'| [{collection["Name"]}]({link}) | {collection["Description"]} | {len(models)} '
                         f'| {published} |')
    return '\n'.join(lines)


def entry_points_table(families: Sequence[Family], readme: str) -> str:
    """Every top-level entry point (a model's ``Alias``): the config it stands for and what that detector is."""
    lines = ['| entry point | config | backbone | neck / head | params (M), deploy | published result |',
             '|---|---|---|---|---|---|']
    for family in families:
        for model in family.models:
            backbone, *rest = model['Metadata']['Architecture']
            results = '; '.join(result_text(result) for result in model.get('Results', [])) or '-'
            for alias in model.get('Alias', []):
                lines.append(f'| `configs/{alias}.py` | {_link(model["Config"], readme)} | {backbone} '
                             f'| {" + ".join(rest)} | {_millions(model["Metadata"]["Parameters"])} | {results} |')
    return '\n'.join(lines)


def rendered_tables(root: str) -> Dict[str, Dict[str, str]]:
    """README path (from ``root``) -> table kind -> the table the metafiles give."""
    families = read_model_zoo(root)
    tables = {family.readme: dict(models=models_table(family), speed=speed_table(family)) for family in families}
    tables['README.md'] = {'families': families_table(families, 'README.md'),
                           'entry-points': entry_points_table(families, 'README.md')}
    return tables


def fill_tables(text: str, tables: Dict[str, str], readme: str) -> str:
    """``text`` with each marked table replaced by the rendered one; every kind in ``tables`` must be marked."""
    missing = sorted(set(tables) - {match.group('kind') for match in _BLOCK.finditer(text)})
    if missing:
        raise ValueError(f'{readme} has no <!-- model-zoo:{missing[0]} --> ... <!-- model-zoo:end --> block; add '
                         'one where the table goes')
    return _BLOCK.sub(lambda match: match.group(1) + tables[match.group('kind')] + '\n' + match.group(3)
                      if match.group('kind') in tables else match.group(0), text)


def updated_readmes(root: str) -> Dict[str, str]:
    """README path -> its text with current tables, for each README whose tables differ from what the metafiles
    give (empty: every table is current)."""
    updated = {}
    for readme, tables in rendered_tables(root).items():
        with open(osp.join(root, readme), encoding='utf-8') as file:
            text = file.read()
        current = fill_tables(text, tables, readme)
        if current != text:
            updated[readme] = current
    return updated


def write_tables(root: str) -> List[str]:
    """Rewrite the tables of every stale README from the metafiles (each file replaced whole); returns them."""
    updated = updated_readmes(root)
    for readme, text in updated.items():
        with atomic_write(osp.join(root, readme), 'w', encoding='utf-8') as file:
            file.write(text)
    return sorted(updated)
