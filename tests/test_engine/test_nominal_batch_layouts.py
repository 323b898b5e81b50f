"""The recipe's nominal batch on every layout: the same 64 images through one optimizer step of tools/train.py on
configs/yolov4_csp_coco.py give the same weights at 1 x 64, 1 x 16 (4 summed), 2 processes x 32 (torchrun) and
2 nodes x 1 x 32 (tools/dist_train.sh with NNODES / NODE_RANK), on the CPU (gloo)."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from parnet_det.apis import build_detector
from parnet_det.utils.config import load_config

from ..helpers import REPO

CONFIG = 'configs/yolov4_csp_coco.py'
IMAGES, SIZE = 64, 64
# Every image has one box of this geometry (x, y, w, h): the same positives per image and level, so that the
# recipe's per-level means over the positives split over micro-batches and processes without changing the sum.
BOX = [14, 18, 30, 22]


def write_dataset(root: str) -> None:
    """64 images of different content (noise, a rectangle of a class colour) with one box of the same geometry."""
    rng = np.random.default_rng(0)
    os.makedirs(osp.join(root, 'train'))
    images, annotations = [], []
    for index in range(IMAGES):
        label = index % 2
        image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        x, y, w, h = BOX
        image[y:y + h, x:x + w] = (200, 40, 40) if label else (40, 40, 200)
        name = f'{index:03d}.png'
        cv2.imwrite(osp.join(root, 'train', name), image)
        images.append(dict(id=index + 1, file_name=name, width=SIZE, height=SIZE))
        annotations.append(dict(id=index + 1, image_id=index + 1, category_id=label + 1, bbox=BOX, area=w * h,
                                iscrowd=0))
    with open(osp.join(root, 'train.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=1, name='blue'), dict(id=2, name='red')]), f)


def layout_config(root: str, path: str) -> Config:
    """configs/yolov4_csp_coco.py (its optimizer wrapper, groups, hook, EMA, loss) on a narrow detector whose norms
    are per image (GroupNorm: no batch statistics), the generated images as they are, one epoch, no warm-up."""
    cfg = load_config(CONFIG)
    norm = dict(type='GN', num_groups=1)
    for part in ('backbone', 'neck', 'bbox_head'):
        cfg.model[part].norm_cfg = norm  # assigned: ConfigDict.update would merge BN's momentum into it
    cfg.model.backbone.update(deepen_factor=0.33, widen_factor=0.125)
    cfg.model.neck.update(in_channels=[32, 64, 128], widen_factor=0.125)
    cfg.model.bbox_head.update(num_classes=2, widen_factor=0.125)
    dataset = cfg.train_dataloader.dataset.dataset
    dataset.update(data_root=root, ann_file='train.json', data_prefix=dict(img='train/'),
                   metainfo=dict(classes=('blue', 'red')),
                   pipeline=[*dataset.pipeline, dict(type='PackDetInputs')])
    cfg.train_dataloader.dataset = dataset  # the images as they are: no mosaic (MultiImageMixDataset) around them
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False,
                                sampler=dict(type='DefaultSampler', shuffle=False))
    cfg.train_cfg.update(max_epochs=1)
    for hook in cfg.custom_hooks:
        if hook.type == 'YOLOv4CSPLrHook':
            hook.update(warmup_epochs=0, warmup_min_iters=0)
    cfg.update(val_dataloader=None, val_cfg=None, val_evaluator=None, test_dataloader=None, test_cfg=None,
               test_evaluator=None, randomness=dict(seed=0), load_from=osp.join(root, 'initial.pth'))
    cfg.dump(path)
    torch.manual_seed(0)
    torch.save(dict(state_dict=build_detector(cfg).state_dict()), cfg.load_from)
    return cfg


def free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def launch(args, env=None):
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHON=sys.executable, **(env or {})))


def weights_after(processes, work_dir, world_size=1):
    """The trained weights (model and EMA) in work_dir/epoch_1.pth once every process ended well, in one run of
    ``world_size`` processes (mmengine's environment report)."""
    for process in processes:
        output = process.communicate()[0]
        assert process.returncode == 0, output[-4000:]
        if process is processes[0]:
            assert f'GPU number: {world_size}' in output and 'Distributed training: ' in output, output[-4000:]
    checkpoint = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=True)
    # mmengine's EMA hooks save the EMA weights as state_dict and the model's as ema_state_dict ('module.' keys).
    model = {key[len('module.'):]: value for key, value in checkpoint['ema_state_dict'].items()}
    return model, checkpoint['state_dict']


@pytest.mark.slow
def test_every_layout_makes_the_batch_64_update(tmp_path):
    root = str(tmp_path / 'data')
    write_dataset(root)
    config, averaging = str(tmp_path / 'layout.py'), str(tmp_path / 'averaging.py')
    cfg = layout_config(root, config)
    # mmengine's own accumulation divides each of the 4 micro-batches' losses by 4: a quarter of the recipe's gradient.
    cfg.optim_wrapper = dict(type='OptimWrapper', accumulative_counts=4, constructor=cfg.optim_wrapper.constructor,
                             optimizer=cfg.optim_wrapper.optimizer)
    cfg.dump(averaging)
    initial = torch.load(osp.join(root, 'initial.pth'), weights_only=True)['state_dict']
    train = [sys.executable, 'tools/train.py', config]

    def batch(size):
        return ['--cfg-options', f'train_dataloader.batch_size={size}']

    runs = {
        '1 x 64': [launch([*train, '--work-dir', str(tmp_path / 'a'), *batch(64)])],
        '1 x 16, 4 summed': [launch([*train, '--work-dir', str(tmp_path / 'b'), *batch(16)])],
        'mmengine average': [launch([sys.executable, 'tools/train.py', averaging, '--work-dir', str(tmp_path / 'e'),
                                     *batch(16)])],
    }
    layouts = {name: weights_after(processes, str(tmp_path / key))
               for (name, processes), key in zip(runs.items(), 'abe')}
    layouts['2 processes x 32'] = weights_after(
        [launch(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path / 'c'), *batch(32)],
                env=dict(PORT=free_port()))], str(tmp_path / 'c'), world_size=2)
    port = free_port()
    layouts['2 nodes x 1 x 32'] = weights_after(
        [launch(['bash', 'tools/dist_train.sh', config, '1', '--work-dir', str(tmp_path / 'd'), *batch(32)],
                env=dict(NNODES='2', NODE_RANK=str(rank), MASTER_ADDR='127.0.0.1', PORT=port)) for rank in (0, 1)],
        str(tmp_path / 'd'), world_size=2)

    model, ema = layouts['1 x 64']
    update = {key: model[key] - initial[key] for key in initial if initial[key].is_floating_point()}
    scale = max(change.abs().max().item() for change in update.values())
    assert scale > 1e-3  # the step moved the weights
    # After one step the EMA is the stepped model (mmengine's averaged model copies at its first update).
    assert all(torch.equal(ema[key], model[key]) for key in update)
    for name in ('1 x 16, 4 summed', '2 processes x 32', '2 nodes x 1 x 32'):
        for weights in layouts[name]:
            worst = max((weights[key] - initial[key] - change).abs().max().item() for key, change in update.items())
            assert worst < 1e-4 * scale, (name, worst, scale)  # float summation order only
    averaged, _ = layouts['mmengine average']
    worst = max((averaged[key] - initial[key] - change).abs().max().item() for key, change in update.items())
    assert worst > 0.1 * scale, worst


def test_the_layout_config_is_the_recipe(tmp_path):
    # What the test above trains is the recipe's training set-up, only narrower and without batch statistics.
    root = str(tmp_path)
    write_dataset(root)
    layout_config(root, str(tmp_path / 'layout.py'))
    cfg, recipe = Config.fromfile(str(tmp_path / 'layout.py')), load_config(CONFIG)
    assert cfg.optim_wrapper == recipe.optim_wrapper
    assert [hook.type for hook in cfg.custom_hooks] == [hook.type for hook in recipe.custom_hooks]
    assert cfg.model.bbox_head.loss == recipe.model.bbox_head.loss
