"""tools/train.py and tools/test.py end to end on generated data, on the CPU."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from parnet_det.datasets import generate_synthetic_coco, synthetic_coco_cfg_options

from ..helpers import run_tool as run_in_process

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/demo/yolo_parnet_tiny_synthetic.py'
# Measured on the 2-core AMD EPYC VM (seed 0): 6 epochs over 200 images of 128 px give bbox AP50 0.144 (51 s;
# 10 epochs gave 0.27 in 95 s); the untrained model gets 0.00. The bar, half the measured AP50, leaves room for
# another machine's float sums.
EPOCHS = 6
AP50_BAR = 0.07


def data_options(data_root, size=128):
    """--cfg-options moving the demo config onto ``data_root`` at ``size`` px."""
    return synthetic_coco_cfg_options(data_root) + [
        f'train_dataloader.dataset.pipeline.4.scale=({size},{size})',
        f'val_dataloader.dataset.pipeline.1.scale=({size},{size})',
        f'test_dataloader.dataset.pipeline.1.scale=({size},{size})', 'randomness.seed=0']


def run_tool(*args, env=None):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def read_metrics(work_dir):
    """The metrics tools/test.py wrote to work_dir/<timestamp>/<timestamp>.json."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    assert files, f'no metrics json under {work_dir}'
    with open(files[-1]) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    data_root = generate_synthetic_coco(str(tmp_path_factory.mktemp('learn_coco')), num_train=200, num_val=50,
                                        image_size=128, seed=1)['data_root']
    work_dir = str(tmp_path_factory.mktemp('train'))
    run_tool('tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options', f'train_cfg.max_epochs={EPOCHS}',
             f'train_cfg.val_interval={EPOCHS}', *data_options(data_root))
    return dict(data_root=data_root, work_dir=work_dir, checkpoint=osp.join(work_dir, f'epoch_{EPOCHS}.pth'))


def _evaluate(trained, tmp_path, *extra, checkpoint=None):
    """(metrics, log) of tools/test.py on the trained detector's val split, at the 128 px it was trained at (every
    evaluation alike: the folded forms' AP is compared with the training form's)."""
    work_dir = str(tmp_path / 'test')
    result = run_tool('tools/test.py', CONFIG, checkpoint or trained['checkpoint'], '--work-dir', work_dir,
                      '--resolution', '128', *extra, '--cfg-options', *data_options(trained['data_root']))
    return read_metrics(work_dir), result.stdout + result.stderr


@pytest.fixture(scope='module')
def evaluated(trained, tmp_path_factory):
    """tools/test.py on the trained detector, as trained: (metrics, its work dir)."""
    tmp_path = tmp_path_factory.mktemp('evaluated')
    metrics, _ = _evaluate(trained, tmp_path)
    return metrics, tmp_path / 'test'


@pytest.mark.slow
def test_small_parnet_detector_learns(evaluated):
    metrics, work_dir = evaluated
    assert metrics['coco/bbox_mAP_50'] >= AP50_BAR, metrics
    # The record tools/report.py reads: model, resolution, the same metrics.
    with open(work_dir / 'ap_results.jsonl') as f:
        record = json.loads(f.readline())
    assert record['model'] == 'yolo_parnet_tiny_synthetic' and record['resolution'] == [128, 128]
    assert record['metrics']['coco/bbox_mAP_50'] == pytest.approx(metrics['coco/bbox_mAP_50'])
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s', 'coco/bbox_mAP_m', 'coco/bbox_mAP_l'):
        assert key in metrics


@pytest.mark.slow
def test_deploy_gives_the_same_ap(trained, evaluated, tmp_path):
    """The detector folded at load (tools/test.py --deploy) and the deploy checkpoint of tools/reparameterize.py
    evaluate to the AP of the training form, every weight of the deploy checkpoint loaded."""
    plain, _ = evaluated
    assert plain['coco/bbox_mAP'] > 0, plain  # a trained model: equal APs are not two zeros
    deployed, _ = _evaluate(trained, tmp_path / 'deploy', '--deploy')
    deploy_checkpoint = str(tmp_path / 'deploy.pth')
    run_tool('tools/reparameterize.py', CONFIG, trained['checkpoint'], deploy_checkpoint)
    reparameterized, log = _evaluate(trained, tmp_path / 'reparameterized', checkpoint=deploy_checkpoint)
    assert 'do not match' not in log and 'missing keys' not in log
    for folded in (deployed, reparameterized):
        assert folded['coco/bbox_mAP'] == pytest.approx(plain['coco/bbox_mAP'], abs=1e-3)
        assert folded['coco/bbox_mAP_50'] == pytest.approx(plain['coco/bbox_mAP_50'], abs=1e-3)


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(tiny_coco, tmp_path):
    work_dir = str(tmp_path)
    common = ['--work-dir', work_dir, '--cfg-options', *data_options(tiny_coco['data_root'], size=64),
              'default_hooks.checkpoint.interval=1', 'train_dataloader.batch_size=4']
    run_tool('tools/train.py', CONFIG, *common, 'train_cfg.max_epochs=1')
    first = torch.load(osp.join(work_dir, 'epoch_1.pth'), weights_only=True)
    # "Interrupted" after epoch 1 of 2: --resume picks up work_dir's last checkpoint.
    result = run_tool('tools/train.py', CONFIG, '--resume', *common, 'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1, iter: 2' in result.stdout + result.stderr
    second = torch.load(osp.join(work_dir, 'epoch_2.pth'), weights_only=True)
    assert (first['meta']['iter'], second['meta']['iter']) == (2, 4)
    # AdamW's step count continues: the optimizer state was restored, not restarted.
    assert [s['step'].item() for s in first['optimizer']['state'].values()][:1] == [2.0]
    assert [s['step'].item() for s in second['optimizer']['state'].values()][:1] == [4.0]


@pytest.mark.slow
def test_two_process_distributed_training_on_cpu(tiny_coco, tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, PORT='29517')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(tmp_path), '--cfg-options',
         *data_options(tiny_coco['data_root'], size=64), 'train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'],
        cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log
    checkpoint = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    # 8 images, 2 processes x 2 images per iteration: 2 iterations.
    assert checkpoint['meta']['iter'] == 2


def test_train_without_dataset_stops_before_training(tmp_path, capsys):
    code, _, err = run_in_process(capsys, 'train.py', osp.join(ROOT, 'configs/yolo_parnet_xl_coco.py'), '--work-dir',
                                  tmp_path, '--cfg-options', 'train_dataloader.dataset.dataset.data_root=/no/coco/')
    assert code == 2 and 'Traceback' not in err
    assert '/no/coco/annotations/instances_train2017.json does not exist' in err
    assert 'generate_synthetic_coco.py' in err
    assert not os.listdir(tmp_path)  # nothing was started


def test_bad_config_path_is_a_clear_error(capsys):
    code, _, err = run_in_process(capsys, 'train.py', 'configs/nope.py')
    assert code == 2 and 'configs/nope.py does not exist' in err
