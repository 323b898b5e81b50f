"""The model zoo: every config is in exactly one family's metafile, every metafile entry's config builds with the
sizes it states, the top-level entry points are the family configs they name, the names state the configs' layout,
the quoted and measured numbers match their sources, and the READMEs' tables are the metafiles'."""
import glob
import importlib.util
import json
import os.path as osp
import re
import runpy
import shutil

import pytest
import yaml
from mmengine.config import Config

import mmdet

from parnet_det.apis import build_detector, load_config
from parnet_det.benchmark.measurement import measured_sizes
from parnet_det.models.builder import model_class
from parnet_det.utils.model_zoo import MODEL_INDEX, fill_tables, read_model_zoo, updated_readmes

from ..helpers import REPO
from ..test_docs import _relative_links

ROOT = str(REPO)
FAMILIES = read_model_zoo(ROOT)
MODELS = [model for family in FAMILIES for model in family.models]
MODEL_OF_CONFIG = {model['Config']: model for model in MODELS}
ENTRY_POINTS = sorted(osp.relpath(path, ROOT) for path in glob.glob(osp.join(ROOT, 'configs', '*.py')))
FAMILY_CONFIGS = sorted(osp.relpath(path, ROOT) for path in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
                        if osp.basename(osp.dirname(path)) != '_base_')
NEEDS_MMPRETRAIN = pytest.mark.skipif(importlib.util.find_spec('mmpretrain') is None,
                                      reason='the ImageNet configs need mmpretrain (requirements/imagenet.txt)')
# Built and measured in make test-fast; every other entry (35-215M parameters, FLOPs at 640 px) only in make test.
QUICK = ('configs/demo/yolo_parnet_tiny_synthetic.py', 'configs/demo/yolo_cspdarknet53s_tiny_synthetic.py',
         'configs/demo/yolox_cspdarknet_tiny_synthetic.py', 'configs/demo/rtmdet_cspnext_tiny_synthetic.py',
         'configs/imagenet/parnet_s_8xb128_in1k.py')
# The entry points the README's commands name, built in make test-fast.
NAMED = ('configs/yolo_parnet_xl_coco.py', 'configs/yolov4_csp_coco.py')


def marks(config, quick):
    return ([] if config in quick else [pytest.mark.slow]) + ([NEEDS_MMPRETRAIN] if '/imagenet/' in config else [])


def test_model_index_imports_every_family_metafile():
    imported = yaml.safe_load(open(osp.join(ROOT, MODEL_INDEX)))['Import']
    families = sorted({osp.dirname(config) for config in FAMILY_CONFIGS})
    assert sorted(imported) == [f'{family}/metafile.yml' for family in families]


def test_every_config_is_in_one_metafile_once():
    configs = [model['Config'] for model in MODELS]
    assert sorted(configs) == FAMILY_CONFIGS
    names = [model['Name'] for model in MODELS]
    assert len(set(names)) == len(names)
    for family in FAMILIES:
        (collection, ) = family.collections
        assert collection['README'] == family.readme and osp.isfile(osp.join(ROOT, family.readme))
        assert {model['In Collection'] for model in family.models} == {collection['Name']}
        assert all(osp.dirname(model['Config']) == osp.dirname(family.metafile) for model in family.models)
        assert all(model['Name'] == osp.splitext(osp.basename(model['Config']))[0] for model in family.models)


@pytest.mark.parametrize('config', [pytest.param(config, marks=[NEEDS_MMPRETRAIN] if '/imagenet/' in config else [])
                                    for config in FAMILY_CONFIGS])
def test_every_config_loads_and_names_registered_types(config):
    cfg = load_config(osp.join(ROOT, config))
    assert model_class(cfg) is not None


@pytest.mark.parametrize('config', [pytest.param(config, marks=marks(config, QUICK), id=config)
                                    for config in FAMILY_CONFIGS])
def test_every_entry_builds_with_the_sizes_it_states(config):
    metadata = MODEL_OF_CONFIG[config]['Metadata']
    stated = {key: metadata[key] for key in ('Parameters', 'Parameters (training form)', 'FLOPs', 'FLOPs Resolution')
              if key in metadata}
    assert measured_sizes(osp.join(ROOT, config), metadata.get('FLOPs Resolution')) == stated


def test_names_state_the_layout_and_schedule():
    """``{N}xb{B}``: B images per GPU (the dataloader's batch) and N x B the batch the lr is set for; ``-{E}e``
    after it: the epochs trained. The metafile's Epochs are the config's."""
    for config in FAMILY_CONFIGS:
        if '/imagenet/' in config and importlib.util.find_spec('mmpretrain') is None:
            continue
        cfg = Config.fromfile(osp.join(ROOT, config))
        epochs = cfg.train_cfg.max_epochs
        assert MODEL_OF_CONFIG[config]['Metadata']['Epochs'] == epochs, config
        layout = re.search(r'_(\d+)xb(\d+)(?:-(\d+)e)?[_-]', osp.basename(config))
        if layout:
            gpus, images, named_epochs = layout.groups()
            assert cfg.train_dataloader.batch_size == int(images), config
            assert cfg.auto_scale_lr.base_batch_size == int(gpus) * int(images), config
            assert named_epochs is None or int(named_epochs) == epochs, config


@pytest.mark.parametrize('entry_point', ENTRY_POINTS)
def test_entry_point_is_one_line_naming_its_family_config(entry_point):
    lines = open(osp.join(ROOT, entry_point)).read().splitlines()
    assert len(lines) == 2 and lines[0].startswith('# entry point: ')
    base = re.fullmatch(r"_base_ = '\./([\w-]+/[\w.-]+\.py)'", lines[1]).group(1)
    model = MODEL_OF_CONFIG[f'configs/{base}']
    # The metafile names it as the model's alias, and it resolves to the model's config, key for key.
    assert osp.splitext(osp.basename(entry_point))[0] in model.get('Alias', [])
    assert Config.fromfile(osp.join(ROOT, entry_point)).to_dict() == \
        Config.fromfile(osp.join(ROOT, model['Config'])).to_dict()


def test_every_alias_is_an_entry_point():
    aliases = sorted(f'configs/{alias}.py' for model in MODELS for alias in model.get('Alias', []))
    assert aliases == ENTRY_POINTS


@pytest.mark.parametrize('entry_point', [pytest.param(path, marks=marks(path, NAMED)) for path in ENTRY_POINTS])
def test_entry_point_builds(entry_point):
    model = build_detector(osp.join(ROOT, entry_point))
    assert model.cfg.filename.endswith(entry_point)  # mmengine names the work dir after this file


def _rows(path):
    with open(osp.join(ROOT, path)) as file:
        return [json.loads(line) for line in file if line.strip()]


def test_inference_times_are_the_benchmark_rows():
    """Each measured speed is the median of one benchmark row of the file it names, of the model under one of its
    names (rows name models by their config's stem: the entry point or, without one, the family file's)."""
    checked = 0
    for model in MODELS:
        names = set(model.get('Alias', [])) | {model['Name']}
        for entry in model['Metadata'].get('inference time (ms/im)', []):
            side = int(entry['resolution'].strip('()').split(',')[0])
            matching = [row for row in _rows(entry['source'])
                        if row['model'] in names and row['variant'] == entry['variant'] and row['mode'] == 'end2end'
                        and row['resolution'] == side and row['batch_size'] == entry['batch size']
                        and row['precision'].upper() == entry['mode'] and row.get('status', 'ok') == 'ok'
                        and row['form'] == 'deploy']
            assert len(matching) == 1, (model['Name'], entry)
            (row, ) = matching
            assert entry['scope'] == 'end to end' and entry['hardware'] == row['hardware']
            assert entry['value'] == round(row['ms_per_batch_median'], 2), (model['Name'], entry)
            checked += 1
    assert checked > 0


def test_published_results_name_their_source():
    for model in MODELS:
        for result in model.get('Results', []):
            assert {'Task', 'Dataset', 'Split', 'Resolution', 'Metrics', 'Source'} <= set(result), model['Name']
            assert result['Source'].strip() and result['Metrics']


def test_reference_results_and_weights_are_mmdets():
    """The reference detectors' quoted AP and weights are those of mmdet's own metafile (the file and model the
    Source names), as installed."""
    (reference, ) = [family for family in FAMILIES if family.metafile == 'configs/reference/metafile.yml']
    for model in reference.models:
        (result, ) = model['Results']
        metafile, name = re.fullmatch(r'mmdet 3\.x (configs/\w+/metafile\.yml), ([\w-]+)', result['Source']).groups()
        with open(osp.join(osp.dirname(mmdet.__file__), '.mim', metafile)) as file:
            (theirs, ) = [model for model in yaml.safe_load(file)['Models'] if model['Name'] == name]
        (their_result, ) = theirs['Results']
        assert result['Metrics']['box AP'] == their_result['Metrics']['box AP']
        assert model['Weights'] == theirs['Weights']


def test_readme_tables_are_the_metafiles():
    assert updated_readmes(ROOT) == {}, 'run python tools/misc/model_zoo.py'


def test_tool_finds_and_rewrites_a_stale_table(tmp_path, capsys):
    for path in [MODEL_INDEX, 'README.md'] + [path for family in FAMILIES for path in (family.metafile, family.readme)]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(osp.join(ROOT, path), tmp_path / path)
    metafile = tmp_path / 'configs/yolox/metafile.yml'
    metafile.write_text(metafile.read_text().replace('Parameters: 112668407', 'Parameters: 99900000', 1))
    tool = runpy.run_path(osp.join(ROOT, 'tools', 'misc', 'model_zoo.py'))['main']
    with pytest.raises(SystemExit) as exit_:
        tool(['--root', str(tmp_path), '--check'])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith('out of date: README.md, configs/yolox/README.md')
    tool(['--root', str(tmp_path)])
    assert '| 99.9 / 120.9 |' in (tmp_path / 'configs/yolox/README.md').read_text()
    assert '| 99.9 |' in (tmp_path / 'README.md').read_text()
    tool(['--root', str(tmp_path), '--check'])
    assert capsys.readouterr().out.endswith('every model-zoo table matches its metafile\n')


def test_a_readme_without_the_marked_block_is_refused():
    with pytest.raises(ValueError, match='README.md has no <!-- model-zoo:models -->'):
        fill_tables('# A family\n', {'models': '| table |'}, 'README.md')


@pytest.mark.parametrize('family', FAMILIES, ids=lambda family: family.readme)
def test_family_readme_links_are_alive(family):
    readme = REPO / family.readme
    dead = [target for target, file_part in _relative_links(readme) if not (readme.parent / file_part).exists()]
    assert not dead, f'{family.readme}: dead relative links {dead}'


def test_a_metafile_entry_without_a_key_the_tables_read_is_named(tmp_path):
    (tmp_path / MODEL_INDEX).write_text('Import:\n  - configs/x/metafile.yml\n')
    (tmp_path / 'configs/x').mkdir(parents=True)
    (tmp_path / 'configs/x/metafile.yml').write_text(
        'Collections:\n  - {Name: X, Description: x, README: configs/x/README.md}\n'
        'Models:\n  - {Name: m, In Collection: X, Config: configs/x/m.py, Metadata: {Architecture: [a], '
        'Parameters: 1}}\n')
    with pytest.raises(ValueError, match=r"configs/x/metafile.yml: the Metadata of model 'm' has no "
                                         r"'Parameters \(training form\)'"):
        read_model_zoo(str(tmp_path))
