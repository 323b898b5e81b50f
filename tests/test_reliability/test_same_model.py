"""Resume and test only the model a checkpoint belongs to; class names compared; a copied work dir resumes
from its own files."""
import os
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.runner import Runner

from parnet_det.apis import init_detector_engine, resume_checkpoint
from parnet_det.datasets import synthetic_coco_cfg_options
from parnet_det.utils.checkpoint import CheckpointMismatchError

from ..helpers import run_tool
from ..test_checkpoint import ToyDataset, ToyModel
from .helpers import ROOT
from .test_entry_points import CONFIG, CSP_CONFIG, assert_user_error, save_model

CLASSES = ('circle', 'rectangle', 'triangle', 'ring', 'cross')


def _toy_runner(work_dir, max_iters, paramwise, **kwargs):
    optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.))
    if paramwise:  # mmengine then makes every parameter a group of its own
        optim_wrapper['paramwise_cfg'] = dict(bias_decay_mult=0.)
    return Runner(model=ToyModel(), work_dir=str(work_dir), optim_wrapper=optim_wrapper,
                  train_dataloader=dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=False),
                                        collate_fn=dict(type='default_collate'), batch_size=4),
                  train_cfg=dict(by_epoch=False, max_iters=max_iters),
                  default_hooks=dict(checkpoint=dict(type='CrashSafeCheckpointHook', interval=1, by_epoch=False)),
                  default_scope='mmdet', **kwargs)


def test_resume_into_other_optimizer_groups_stops_before_loading(tmp_path):
    _toy_runner(tmp_path, 1, paramwise=True).train()
    checkpoint = str(tmp_path / 'iter_1.pth')
    runner = _toy_runner(tmp_path, 2, paramwise=False, resume=True, load_from=checkpoint,
                         custom_hooks=[dict(type='ResumeCheckHook', checkpoint=checkpoint)])
    with pytest.raises(CheckpointMismatchError) as info:
        runner.train()
    assert str(info.value) == (
        f'--resume: {checkpoint} holds optimizer state for parameter groups of sizes [1, 1], this config builds [2] '
        '(another model or paramwise_cfg): resume with the config it was trained with, or start a new training '
        'from its weights with load_from=... and no --resume')
    assert runner.iter == 0  # nothing was resumed
    # The same groups resume.
    _toy_runner(tmp_path, 2, paramwise=True, resume=True, load_from=checkpoint,
                custom_hooks=[dict(type='ResumeCheckHook', checkpoint=checkpoint)]).train()
    assert torch.load(tmp_path / 'iter_2.pth', weights_only=True)['meta']['iter'] == 2


@pytest.mark.slow
@pytest.mark.parametrize('checkpoint_of, first_difference', [
    ((CSP_CONFIG, {}), 'missing keys: backbone.'),
    ((CONFIG, {'model.bbox_head.num_classes': 4}), 'shape differences: bbox_head.multi_level_conv_cls.0.weight: '
                                                   'checkpoint (4, 64, 1, 1), model (5, 64, 1, 1)'),
])
def test_train_tool_resumes_only_the_same_model(tmp_path, tiny_coco, checkpoint_of, first_difference):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    checkpoint = save_model(checkpoint_of[0], work_dir / 'epoch_2.pth', **checkpoint_of[1])
    (work_dir / 'last_checkpoint').write_text(str(checkpoint))
    result = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--resume', '--work-dir', str(work_dir),
                             '--cfg-options', *synthetic_coco_cfg_options(tiny_coco['data_root'])],
                            cwd=ROOT, capture_output=True, text=True)
    assert_user_error(result.returncode, result.stderr, f'error: --resume: {checkpoint} does not fit the model of '
                      'this config', first_difference)
    log = result.stdout + result.stderr
    assert 'resumed epoch' not in log and 'do not match exactly' not in log
    assert torch.load(checkpoint, weights_only=True)['meta'] == {}  # untouched
    assert sorted(os.listdir(work_dir)) == ['epoch_2.pth', 'last_checkpoint']  # no log folder, no config dump


def test_a_copied_work_dir_resumes_from_its_own_files(tmp_path):
    original = tmp_path / 'original'
    original.mkdir()
    torch.save({'state_dict': {}, 'meta': {'iter': 2}}, original / 'epoch_2.pth')
    (original / 'last_checkpoint').write_text(str(original / 'epoch_2.pth'))  # mmengine writes the absolute path
    copy = tmp_path / 'copy'
    shutil.copytree(original, copy)
    assert resume_checkpoint(str(copy)) == str(copy / 'epoch_2.pth')


def _checkpoint_with_classes(path, classes):
    checkpoint = save_model(CONFIG, path)
    state = torch.load(checkpoint, weights_only=True)
    state['meta'] = dict(dataset_meta=dict(classes=classes))
    torch.save(state, checkpoint)
    return checkpoint


def test_test_tool_stops_on_other_class_names(capsys, tmp_path, tiny_coco):
    renamed = CLASSES[::-1]  # same names, another order: every label named wrongly
    checkpoint = _checkpoint_with_classes(tmp_path / 'other_classes.pth', renamed)
    work_dir = tmp_path / 'work'
    code, _, err = run_tool(capsys, 'test.py', CONFIG, checkpoint, '--work-dir', work_dir, '--cfg-options',
                            *synthetic_coco_cfg_options(tiny_coco['data_root']))
    assert_user_error(code, err, f"error: {checkpoint}: the checkpoint's classes {list(renamed)} differ from the "
                      f"config's {list(CLASSES)}", 'evaluate it with the config it was trained with')
    assert not work_dir.exists()


def test_the_engine_warns_naming_both_lists(tmp_path, warnings_logged):
    checkpoint = _checkpoint_with_classes(tmp_path / 'other_classes.pth', ('a', 'b', 'c', 'd', 'e'))
    engine = init_detector_engine(CONFIG, str(checkpoint), 'cpu')
    assert engine.model.dataset_meta['classes'] == ('a', 'b', 'c', 'd', 'e')
    warning = next(w for w in warnings_logged if "the checkpoint's classes ['a', 'b', 'c', 'd', 'e'] differ from "
                   f"the config's {list(CLASSES)}" in w)
    assert 'WARNING' not in warning  # the logger says the level; the message does not repeat it


def test_test_tool_refuses_an_unwritable_work_dir(capsys, tmp_path, tiny_coco):
    checkpoint = save_model(CONFIG, tmp_path / 'own.pth')
    code, _, err = run_tool(capsys, 'test.py', CONFIG, checkpoint, '--work-dir', checkpoint / 'work',
                            '--cfg-options', *synthetic_coco_cfg_options(tiny_coco['data_root']))
    assert_user_error(code, err, f'cannot write {checkpoint / "work" / "ap_results.jsonl"}: {checkpoint} is a file')


