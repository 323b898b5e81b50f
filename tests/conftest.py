import functools
import logging
import os
import shutil

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope, init_default_scope

from parnet_det.datasets import generate_synthetic_coco
from parnet_det.utils import collect_env

from .helpers import TINY_ARCH

# Keep CPU tests deterministic and from oversubscribing small CI machines: at most two threads, shared out
# among pytest-xdist's workers. The tools a test starts in a subprocess take the same share (torch, ONNX Runtime's
# and OpenMP's pools read OMP_NUM_THREADS): two workers, each waiting on a tool that spins up two OpenMP threads,
# put four busy threads on two cores, and the whole suite ran no faster than one process.
THREADS = max(1, min(2, os.cpu_count() or 1) // int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', 1)))
torch.set_num_threads(THREADS)
os.environ['OMP_NUM_THREADS'] = str(THREADS)

# The files that take longest, longest first (``--durations``, 2-core VM): pytest-xdist hands out whole files
# (Makefile: --dist loadfile) in collection order (--no-loadscope-reorder; its default order, most tests first,
# sent these few-test files that train for minutes last, and one worker ran them alone at the end while the
# other had nothing left). Longest first, the short files fill in around them.
LONGEST_FILES = (
    'tests/test_models/test_yolov4_csp_learning.py',
    'tests/test_configs/test_model_zoo.py',
    'tests/test_deploy/test_runtimes.py',
    'tests/test_tools/test_train_test_end_to_end.py',
    'tests/test_deploy/test_int8.py',
    'tests/test_configs/test_configs_build_and_run.py',
    'tests/test_tools/test_train_imagenet.py',
    'tests/test_engine/test_nominal_batch_layouts.py',
    'tests/test_configs/test_parnet_in_mmdet.py',
    'tests/test_configs/test_imagenet_configs.py',
)


def pytest_collection_modifyitems(config, items):
    missing = [path for path in LONGEST_FILES if not (config.rootpath / path).is_file()]
    if missing:
        raise pytest.UsageError(f'tests/conftest.py LONGEST_FILES names files that are gone: {missing}; '
                                'update the list')
    rank = {path: index for index, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split('::')[0], len(rank)))  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def no_default_scope():
    """Every test starts as a user's plain script does: with no mmengine default scope, whatever an
    earlier test's Runner left. A module that builds only under mmdet's scope fails here (issue 17);
    a test that needs a scope asks for it (``mmdet_scope``). Restored afterwards."""
    scopes = DefaultScope._instance_dict  # mmengine keeps no public way to unset the scope
    saved = scopes.copy()
    scopes.clear()
    yield
    scopes.clear()
    scopes.update(saved)


@pytest.fixture(autouse=True)
def torch_determinism_restored():
    """A Runner with ``randomness.deterministic=True`` (the learning tests) turns on
    ``torch.use_deterministic_algorithms`` for the whole process; every later test in that worker ran
    under it. Restored after each test."""
    saved = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """A benchmark run sets torch's threads to its own count (the CPU preset's 2) for the rest of the process;
    the worker's next tests would then run two threads beside the other worker's (see THREADS). Restored after
    each test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def mmcv_ops_probed_once():
    """For the modules whose benchmark runs record the environment: mmcv's ops are probed once per module. Each
    probe starts two Python processes that import torch and mmcv (~5 s a run), the answer cannot change in
    between, and those modules do not read it (the probe itself: tests/test_package.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(collect_env, 'mmcv_ops_info', functools.cache(collect_env.mmcv_ops_info))
        yield


@pytest.fixture
def mmdet_scope(no_default_scope):
    """mmdet's default scope, for tests that build mmdet objects the way a Runner does."""
    init_default_scope('mmdet')


@pytest.fixture
def tiny_arch():
    return dict(TINY_ARCH)


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory):
    """A few generated COCO-format images, shared by the tests of a session."""
    return generate_synthetic_coco(str(tmp_path_factory.mktemp('tiny_coco')), num_train=8, num_val=4,
                                   image_size=128, seed=0)


@pytest.fixture
def data_root(tiny_coco, tmp_path):
    """A private copy of the generated dataset, to break."""
    root = str(tmp_path / 'coco')
    shutil.copytree(tiny_coco['data_root'], root)
    return root


@pytest.fixture
def warnings_logged():
    """Warnings sent to mmengine's current logger, as text."""
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
