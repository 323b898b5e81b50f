"""Pre-flight of the ImageNet configs' datasets (mmpretrain's image folders): one line per problem, before any
work starts, and the layout to fix it."""
import os
import shutil

import pytest

from parnet_det.apis import load_config
from parnet_det.datasets import check_dataset_config, generate_synthetic_imagenet

from ..helpers import run_tool
from .helpers import preflight_error

TINY_CONFIG = 'tests/data/configs/parnet_tiny_imagenet_synthetic.py'
IMAGENET_CONFIG = 'configs/imagenet/parnet_xl_csp_8xb128_in1k.py'


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    return generate_synthetic_imagenet(str(tmp_path_factory.mktemp('imagenet')), num_train=2, num_val=1)


@pytest.fixture
def root(generated, tmp_path):
    """A private copy of the generated folder, to break."""
    return shutil.copytree(generated['data_root'], str(tmp_path / 'imagenet'))


def tiny_cfg(root, config=TINY_CONFIG):
    return load_config(config, {f'{split}_dataloader.dataset.data_root': root for split in ('train', 'val', 'test')})


def test_the_generated_folder_passes(root):
    check_dataset_config(tiny_cfg(root), splits=('train', 'val', 'test'))


def test_missing_dataset_names_the_folder_and_the_layout(tmp_path, capsys):
    code, _, err = run_tool(capsys, 'train.py', IMAGENET_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                            f'train_dataloader.dataset.data_root={tmp_path}/none',
                            f'val_dataloader.dataset.data_root={tmp_path}/none')
    assert code == 2
    assert f'image folder {tmp_path}/none/train does not exist (train split)' in err
    assert 'data/imagenet/train/<wnid>/*.JPEG' in err
    assert not (tmp_path / 'work').exists()  # nothing started


def test_misplaced_dataset_shows_what_is_there(root):
    os.rename(os.path.join(root, 'train'), os.path.join(root, 'ILSVRC2012_img_train'))
    assert f"image folder {root}/train does not exist (train split) ({root} holds ['ILSVRC2012_img_train', 'val'])" \
        in preflight_error(tiny_cfg(root))


def test_flat_val_folder_without_its_list(root):
    val = os.path.join(root, 'val')
    for folder in os.listdir(val):
        for name in os.listdir(os.path.join(val, folder)):
            os.rename(os.path.join(val, folder, name), os.path.join(val, f'{folder}_{name}'))
        os.rmdir(os.path.join(val, folder))
    assert (f'the val image folder {val} has no class folders (4 images lie directly in it) and there is no '
            'meta/val.txt') in preflight_error(tiny_cfg(root))


def test_class_folders_differ_from_the_classes(root):
    # The real ImageNet config on the 4-class folder: 1000 classes, 4 folders; and the head's 1000 outputs.
    message = preflight_error(tiny_cfg(root, IMAGENET_CONFIG))
    assert f'the train image folder {root}/train has 4 class folders' in message
    assert 'the dataset 1000 classes' in message


def test_head_must_predict_the_classes(root):
    cfg = tiny_cfg(root)
    cfg.model.head.num_classes = 5
    assert 'model.head.num_classes=5 but the train dataset has 4 classes' in preflight_error(cfg)


def test_empty_class_folder(root):
    shutil.rmtree(os.path.join(root, 'train', 'plain'))
    os.makedirs(os.path.join(root, 'train', 'plain'))
    assert f"1 class folders of {root}/train hold no image: ['plain']" in preflight_error(tiny_cfg(root))


def test_listed_files_labels_and_lines(root):
    os.makedirs(os.path.join(root, 'meta'))
    listing = os.path.join(root, 'meta', 'val.txt')
    with open(listing, 'w') as f:
        f.write('plain/0000.png 2\nplain/0001.png 2\n')
    assert f"{listing}: 1 of the 2 images it lists are not files in {root}/val: ['plain/0001.png']" \
        in preflight_error(tiny_cfg(root))
    with open(listing, 'w') as f:
        f.write('plain/0000.png 7\n')
    assert 'labels [7] are not below the 4 classes' in preflight_error(tiny_cfg(root))
    with open(listing, 'w') as f:
        f.write('plain/0000.png\n')
    assert "1 lines are not '<file> <label>'" in preflight_error(tiny_cfg(root))
