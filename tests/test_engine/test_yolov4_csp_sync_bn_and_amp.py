"""The recipe's SyncBN and AMP in the YOLOv4-CSP configs: the detectors convert to SyncBatchNorm intact, one
process changes nothing, CPU runs drop what needs CUDA (SyncBN in a CPU process group, AmpOptimWrapper)."""
import copy

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.model import convert_sync_batchnorm
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.runner import Runner
from torch.nn.modules.batchnorm import _BatchNorm

from parnet_det.apis import build_detector, set_launcher, setup_train_config, use_amp_where_available
from parnet_det.benchmark.training import training_config
from parnet_det.engine import NominalBatchOptimWrapper
from parnet_det.utils import amp as amp_helpers
from parnet_det.utils.config import load_config

from ..helpers import TINY_ARCH
from ..test_benchmark.test_measurements import TINY_YOLOV4_CSP
from ..test_models.test_implicit_head import tiny_config as tiny_yolor_config
from .test_yolov4_csp_lr_hook import GroupsModel

BASE = 'configs/_base_/yolov4_csp_coco.py'
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU-only behaviour')


def tiny_parnet_config():
    cfg = load_config('configs/yolov4_csp_parnet_xl_coco.py')
    cfg.model.backbone.arch = dict(TINY_ARCH)
    cfg.merge_from_dict({'model.neck.in_channels': [32, 64, 128], 'model.neck.reduced_channels': [32, 64, 128],
                         'model.neck.widen_factor': 0.125, 'model.bbox_head.widen_factor': 0.125,
                         'model.bbox_head.num_classes': 3})
    return cfg


def count(model, kind):
    return sum(1 for m in model.modules() if type(m) is kind)


@pytest.mark.parametrize('make_config', [tiny_parnet_config, tiny_yolor_config,
                                         lambda: load_config('configs/yolov4_csp_coco.py', TINY_YOLOV4_CSP)],
                         ids=['yolov4_csp_parnet', 'yolor_parnet', 'yolov4_csp_cspdarknet53s'])
def test_detectors_convert_to_sync_bn_intact(make_config):
    cfg = make_config()
    assert cfg.sync_bn == 'torch'  # the base's, inherited
    model = build_detector(cfg)
    norms = [type(m) for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and set(norms) == {nn.BatchNorm2d}
    converted = convert_sync_batchnorm(copy.deepcopy(model), cfg.sync_bn)
    assert (count(converted, nn.SyncBatchNorm), count(converted, nn.BatchNorm2d)) == (len(norms), 0)
    torch.testing.assert_close(converted.state_dict(), model.state_dict(), rtol=0, atol=0)
    # init_weights (the Runner calls it after converting) treats SyncBatchNorm as BatchNorm.
    torch.manual_seed(0)
    model.init_weights()
    torch.manual_seed(0)
    converted.init_weights()
    torch.testing.assert_close(converted.state_dict(), model.state_dict(), rtol=0, atol=0)
    inputs = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for mode in ('eval', 'train'):  # train without a process group: SyncBatchNorm computes BatchNorm
            getattr(model, mode)()
            getattr(converted, mode)()
            torch.testing.assert_close(converted._forward(inputs), model._forward(inputs), rtol=0, atol=0)
    torch.testing.assert_close(converted.state_dict(), model.state_dict(), rtol=0, atol=0)  # running stats too


def test_one_process_runner_keeps_batchnorm(tmp_path):
    # mmengine converts only when the launcher is distributed; launcher 'none' is a no-op.
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    runner = Runner(model=GroupsModel(), work_dir=str(tmp_path), cfg=dict(sync_bn='torch'), default_scope='mmdet')
    assert count(runner.model, nn.SyncBatchNorm) == 0 and count(runner.model, nn.BatchNorm2d) == 1
    assert count(convert_sync_batchnorm(model, 'torch'), nn.SyncBatchNorm) == 1  # what a distributed run gets


def test_sync_bn_cannot_train_on_cpu_inside_a_process_group(tmp_path):
    # Why set_launcher drops sync_bn for CPU-only distributed runs.
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        with pytest.raises(ValueError, match='SyncBatchNorm expected input tensor to be on GPU'):
            nn.SyncBatchNorm(2).train()(torch.rand(2, 2, 3, 3))
    finally:
        dist.destroy_process_group()


@NO_CUDA
def test_cpu_distributed_launch_drops_sync_bn(warnings_logged):
    cfg = load_config(BASE)
    set_launcher(cfg, 'slurm')  # (the pytorch launcher also starts a process group)
    assert 'sync_bn' not in cfg and cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert warnings_logged == ['no GPU: sync_bn dropped, SyncBatchNorm needs CUDA tensors (each process normalises '
                               'its own batch)']
    cfg = load_config(BASE)
    set_launcher(cfg, 'none')
    assert cfg.sync_bn == 'torch'  # kept: mmengine converts nothing on one process


def test_amp_is_the_default_and_falls_back_to_fp32_without_cuda(monkeypatch, warnings_logged):
    cfg = load_config(BASE)
    assert (cfg.optim_wrapper.type, cfg.optim_wrapper.loss_scale) == ('NominalBatchAmpOptimWrapper', 'dynamic')
    monkeypatch.setattr(amp_helpers, 'amp_available', lambda: True)
    assert use_amp_where_available(copy.deepcopy(cfg)).optim_wrapper == cfg.optim_wrapper
    assert warnings_logged == []
    monkeypatch.setattr(amp_helpers, 'amp_available', lambda: False)
    use_amp_where_available(cfg)
    assert cfg.optim_wrapper.type == 'NominalBatchOptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.constructor == 'YOLOv4CSPOptimWrapperConstructor'
    assert cfg.optim_wrapper.nominal_batch_size == 64
    assert warnings_logged == ['no CUDA device: AMP is off, training in fp32 with NominalBatchOptimWrapper instead '
                               'of NominalBatchAmpOptimWrapper']
    # The benchmark's fp32 training step is fp32 whatever the config's default.
    fp32_step = training_config(load_config('configs/yolov4_csp_coco.py'), 'fp32', with_cp=False)
    assert fp32_step.optim_wrapper.type == 'OptimWrapper'


@pytest.mark.parametrize('config, amp, fp32_wrapper', [(BASE, False, 'NominalBatchOptimWrapper'),
                                                       ('configs/demo/yolo_parnet_tiny_synthetic.py', True,
                                                        'OptimWrapper')])
def test_the_train_tool_falls_back_for_the_config_and_for_amp(config, amp, fp32_wrapper, monkeypatch, tmp_path,
                                                              warnings_logged):
    monkeypatch.setattr(amp_helpers, 'amp_available', lambda: False)
    cfg = setup_train_config(load_config(config), config, work_dir=str(tmp_path), amp=amp)
    assert cfg.optim_wrapper.type == fp32_wrapper and 'loss_scale' not in cfg.optim_wrapper
    assert len(warnings_logged) == 1 and warnings_logged[0].startswith('no CUDA device: AMP is off')


@NO_CUDA
def test_on_cpu_only_the_fallback_builds(mmdet_scope):
    model = GroupsModel()
    optim_wrapper = load_config(BASE).optim_wrapper
    with pytest.raises(AssertionError, match='only available training on gpu'):
        build_optim_wrapper(model, copy.deepcopy(optim_wrapper))
    cfg = use_amp_where_available(load_config(BASE))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper) is NominalBatchOptimWrapper and isinstance(wrapper, OptimWrapper)
    assert [g['group_name'] for g in wrapper.optimizer.param_groups] == ['no_decay', 'decay', 'bias']
