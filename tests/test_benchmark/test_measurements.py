"""Measurements you can trust: every model folded alike, like-for-like workloads, interleaved timing with its
spread, set-up failures kept to their setting."""
import json
from pathlib import Path

import pytest
import torch

from parnet_det.analysis import foldable_norms
from parnet_det.apis import build_detector
from parnet_det.benchmark import BenchmarkSettings, load_model_specs, measurement, run_benchmark
from parnet_det.benchmark.matrix import done_keys
from parnet_det.benchmark.measurement import build_form
from parnet_det.benchmark.regimes import ratio_tables
from parnet_det.benchmark.report import render_csv
from parnet_det.benchmark.rows import add_baseline_ratios, numeric_order, ratio_spread, row_key, verdict
from parnet_det.benchmark.settings import Recipe, check_workloads
from parnet_det.benchmark.tables import ratio_cell
from parnet_det.benchmark.timing import BlockFailed, BlockTimer, interleave

from ..helpers import load_tool

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'configs' / 'demo'
PARNET, BASELINE = 'yolo_parnet_tiny_synthetic', 'yolo_cspdarknet53s_tiny_synthetic'
QUICK = dict(warmup=0, iters=1, repeats=1, min_repeat_s=0)
CPU = torch.device('cpu')


def _spec(name, checkpoint=None):
    return load_model_specs(str(DEMO / f'{name}.py'), checkpoint)[0]


# Folding symmetry.

def test_the_deploy_form_of_parnet_leaves_no_batchnorm_that_could_fold():
    model, folded = build_form(_spec(PARNET), 'deploy', CPU)
    assert folded['folded_blocks'] > 0 and folded['folded_norms'] > 0  # ParNet's blocks, and its neck and head
    assert foldable_norms(model) == []


def test_the_deploy_form_of_the_yolox_recipe_baseline_leaves_no_batchnorm_that_could_fold():
    # Every ConvModule of backbone, neck and head, and the norm after each BottleneckCSP's concatenation.
    model, folded = build_form(_spec(BASELINE), 'deploy', CPU)
    assert folded['folded_blocks'] == 0 and folded['folded_norms'] > 0
    assert foldable_norms(model) == []


def test_the_train_form_folds_nothing_for_anyone():
    for name in (PARNET, BASELINE):
        model, folded = build_form(_spec(name), 'train', CPU)
        assert folded == dict(folded_blocks=0, folded_norms=0)
        assert len(foldable_norms(model)) > 0


def test_foldable_norms_sees_a_norm_after_a_conv_and_after_a_concatenation_of_convs_only():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(3, 4, 1)
            self.after_conv, self.after_cat = torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(8)
            self.after_relu = torch.nn.BatchNorm2d(4)

        def forward(self, x):
            return (self.after_conv(self.a(x)), self.after_cat(torch.cat((self.a(x), self.b(x)), 1)),
                    self.after_relu(self.b(x).relu()))

    assert foldable_norms(Net(), (1, 3, 8, 8)) == ['after_conv', 'after_cat']


# Like-for-like workloads.

def test_a_checkpoint_for_some_models_and_not_others_is_refused_unless_allowed(tmp_path):
    specs = load_model_specs(str(DEMO / f'{PARNET}.py'), baselines=[str(DEMO / f'{BASELINE}.py')])
    check_workloads(specs)  # none has weights: all controlled
    specs[0].checkpoint = 'parnet.pth'
    with pytest.raises(ValueError, match=f'{PARNET} run with a checkpoint but {BASELINE} with the controlled '
                       'workload.*--baseline-checkpoint CONFIG=CKPT.*--mixed-workloads'):
        check_workloads(specs)
    check_workloads(specs, mixed_workloads=True)


def _checkpoint(tmp_path, name):
    torch.manual_seed(1)
    path = tmp_path / f'{name}.pth'
    torch.save({'state_dict': build_detector(str(DEMO / f'{name}.py')).state_dict()}, path)
    return str(path)


@pytest.mark.slow
def test_the_cli_refuses_mixed_workloads_before_writing_and_marks_them_when_allowed(tmp_path, capsys):
    tool = load_tool('benchmark.py')
    parnet, baseline = str(DEMO / f'{PARNET}.py'), str(DEMO / f'{BASELINE}.py')
    weights = _checkpoint(tmp_path, PARNET)
    common = ['--baseline', baseline, '--resolutions', '64', '--warmup', '0', '--repeats', '2', '--min-repeat-time',
              '0', '--threads', '1']
    with pytest.raises(SystemExit) as exit_info:
        tool.main([parnet, weights, *common, '--work-dir', str(tmp_path / 'refused')])
    assert exit_info.value.code == 2 and not (tmp_path / 'refused').exists()
    assert '--mixed-workloads' in capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(SystemExit) as exit_info:  # a checkpoint for a config that is no --baseline
        tool.main([parnet, weights, *common, '--baseline-checkpoint', f'{parnet}={weights}',
                   '--work-dir', str(tmp_path / 'refused')])
    assert exit_info.value.code == 2 and 'is not a --baseline' in capsys.readouterr().err.splitlines()[-1]

    tool.main([parnet, weights, *common, '--mixed-workloads', '--work-dir', str(tmp_path / 'mixed')])
    rows = json.loads((tmp_path / 'mixed' / 'results.json').read_text())['rows']
    assert {(row['model'], row['workload'].split(':')[0]) for row in rows} == {(PARNET, 'checkpoint'),
                                                                             (BASELINE, 'controlled')}
    assert all(row['mixed_workloads'] for row in rows)
    assert '**mixed workloads**' in (tmp_path / 'mixed' / 'results.md').read_text()

    tool.main([parnet, weights, *common, '--baseline-checkpoint', f'{baseline}={_checkpoint(tmp_path, BASELINE)}',
               '--work-dir', str(tmp_path / 'both')])
    rows = json.loads((tmp_path / 'both' / 'results.json').read_text())['rows']
    assert {row['workload'] for row in rows} == {'checkpoint'} and not any(row['mixed_workloads'] for row in rows)
    assert all(row['nms_candidates_per_image'] is not None for row in rows)
    assert all(row['detections_per_image'] is not None for row in rows if row['mode'] == 'end2end')


# Interleaved timing.

class FakeClock:
    """A clock that each call of a step moves on by that step's duration; ``log`` records the calls."""

    def __init__(self):
        self.now, self.log = 0.0, []

    def __call__(self):
        return self.now

    def step(self, name, seconds):
        def call():
            self.log.append(name)
            self.now += seconds() if callable(seconds) else seconds
        return call


def test_the_models_alternate_repeat_by_repeat():
    clock = FakeClock()
    timers = [BlockTimer(clock.step(name, 0.5), CPU, clock=clock) for name in 'AB']
    for timer in timers:
        timer.warm_up(warmup=1, min_iters=1, min_block_s=1.0)
    clock.log.clear()
    block_ms = interleave(timers, repeats=3)
    # Blocks of 2 calls (0.5 s each, 1 s at least), A's then B's, three rounds.
    assert clock.log == ['A', 'A', 'B', 'B'] * 3
    assert block_ms == [[500.0] * 3] * 2


def test_a_timer_that_fails_in_a_round_is_dropped_and_the_others_go_on():
    clock = FakeClock()
    timers = [BlockTimer(clock.step(name, 0.125), CPU, clock=clock) for name in 'AB']

    def run_block(index, timer):
        if index == 0 and len(clock.log) > 0:
            raise BlockFailed
        return timer.time_block()

    assert interleave(timers, repeats=3, run_block=run_block) == [[125.0], [125.0] * 3]


def test_a_repeat_lasts_at_least_the_minimum_time_even_when_the_step_speeds_up():
    clock = FakeClock()
    durations = iter([0.3] * 3 + [0.1] * 100)  # warm-up and estimate at 0.3 s, then three times faster
    timer = BlockTimer(clock.step('A', lambda: next(durations)), CPU, clock=clock)
    timer.warm_up(warmup=2, min_iters=1, min_block_s=1.0)
    assert timer.iters == 4  # ceil(1.0 / 0.3)
    clock.log.clear()
    start = clock.now
    assert timer.time_block() == pytest.approx(100.0)
    assert len(clock.log) == 12 and clock.now - start >= 1.0  # whole blocks of 4 until a second has passed


def test_without_a_minimum_time_a_repeat_is_exactly_the_iterations():
    clock = FakeClock()
    timer = BlockTimer(clock.step('A', 0.01), CPU, clock=clock)
    timer.warm_up(warmup=3, min_iters=5, min_block_s=0.0)
    assert len(clock.log) == 3 and timer.iters == 5
    assert timer.time_block() == pytest.approx(10.0) and len(clock.log) == 8


def test_run_benchmark_interleaves_the_models_of_a_setting(monkeypatch):
    order = []
    time_block = BlockTimer.time_block

    def logged(timer):
        order.append(timer.model_name)
        return time_block(timer)

    prepare = measurement.ModelBench.prepare

    def named(bench, case, row):
        timer = prepare(bench, case, row)
        timer.model_name = bench.spec.name
        return timer

    monkeypatch.setattr(BlockTimer, 'time_block', logged)
    monkeypatch.setattr(measurement.ModelBench, 'prepare', named)
    specs = load_model_specs(str(DEMO / f'{PARNET}.py'), baselines=[str(DEMO / f'{BASELINE}.py')])
    settings = BenchmarkSettings(resolutions=(64, ), batch_sizes=(1, ), threads=1,
                                 **dict(QUICK, repeats=3))
    rows = run_benchmark(specs, settings, log=lambda line: None)
    assert order == [PARNET, BASELINE] * 3 * 2  # three rounds, network then end2end
    network = [row for row in rows if row['mode'] == 'network']
    assert network[0]['timing_group'] == network[1]['timing_group'] and len(network[0]['ms_per_batch_repeats']) == 3
    assert all(row['peak_memory_mib'] is None for row in rows)  # n/a on the CPU


# Ratios with their spread.

def _row(model, repeats, group='g1'):
    return dict(model=model, hardware='cpu', resolution=64, batch_size=1, precision='fp32', form='deploy',
                mode='network', variant='eager', with_cp=None, timing_group=group, ms_per_batch_repeats=repeats,
                ms_per_batch_median=sorted(repeats)[len(repeats) // 2], ms_per_batch_min=min(repeats),
                ms_per_batch_max=max(repeats), images_per_s=1000 / sorted(repeats)[len(repeats) // 2], status='ok')


def test_a_ratio_pairs_the_rounds_of_rows_timed_together():
    baseline, model = _row('base', [20.0, 18.0, 22.0]), _row('model', [10.0, 12.0, 11.0])
    # Per round 20/10, 18/12, 22/11.
    assert ratio_spread(model, baseline) == (2.0, 1.5, 2.0, True)
    add_baseline_ratios([baseline, model], 'base')
    assert ratio_cell(model, 'fps_ratio_to_baseline') == '2.00 (1.50-2.00) faster'
    assert ratio_cell(baseline, 'fps_ratio_to_baseline') == '1.00 (1.00-1.00) within noise'


def test_rows_of_different_runs_get_the_widest_interval_of_their_repeats():
    baseline, model = _row('base', [20.0, 18.0, 22.0], 'g1'), _row('model', [10.0, 12.0, 11.0], 'g2')
    median, low, high, paired = ratio_spread(model, baseline)
    assert (median, low, high, paired) == (pytest.approx(20 / 11), pytest.approx(18 / 12), pytest.approx(22 / 10),
                                           False)


def test_a_ratio_whose_spread_holds_1_is_within_noise():
    baseline, model = _row('base', [10.0, 10.4, 9.8]), _row('model', [9.9, 10.0, 10.1])
    _, low, high, _ = ratio_spread(model, baseline)
    assert low < 1 < high and verdict(low, high) == 'within noise'
    assert verdict(0.8, 0.95) == 'slower' and verdict(1.01, 1.2) == 'faster'


def test_settings_sort_by_number():
    rows = [_row(model, [10.0], group) for model in ('base', 'model') for group in ('g1', )]
    rows += [dict(row, resolution=1280) for row in rows] + [dict(row, resolution=640) for row in rows]
    add_baseline_ratios(rows, 'base')
    table = ratio_tables(rows, [Recipe('test', 'base', ('model', ))])
    lines = [line for line in table.splitlines() if line.startswith('| network')]
    assert [line.split(' | ')[2] for line in lines[:3]] == ['64', '640', '1280']
    assert sorted([1280, 512, None, 'x'], key=numeric_order) == [512, 1280, 'x', None]


# Set-up failures stay in their setting.

def test_a_failure_while_setting_up_a_setting_marks_only_that_models_rows_there(monkeypatch):
    flops_by_part = measurement.flops_by_part

    def fails_at_96(model, resolution, device):
        if resolution == 96 and type(model.backbone).__name__ == 'ParNet':
            raise RuntimeError('out of memory (injected)')
        return flops_by_part(model, resolution, device)

    monkeypatch.setattr(measurement, 'flops_by_part', fails_at_96)
    specs = load_model_specs(str(DEMO / f'{PARNET}.py'), baselines=[str(DEMO / f'{BASELINE}.py')])
    settings = BenchmarkSettings(resolutions=(64, 96), batch_sizes=(1, ), threads=1, **QUICK)
    rows = run_benchmark(specs, settings, log=lambda line: None)
    status = {(row['model'], row['resolution'], row['mode']): row['status'] for row in rows}
    assert status == {(model, resolution, mode): 'error' if (model, resolution) == (PARNET, 96) else 'ok'
                      for model in (PARNET, BASELINE) for resolution in (64, 96) for mode in ('network', 'end2end')}
    failed = [row for row in rows if row['status'] == 'error']
    assert all(row['error'] == 'RuntimeError: out of memory (injected)' for row in failed)


def test_a_resumed_matrix_measures_rows_of_the_old_protocol_again():
    old = _row('model', [10.0], group=None)
    new, failed = dict(_row('model', [10.0]), resolution=96), dict(_row('model', [10.0]), resolution=128,
                                                                    status='error')
    train = dict(_row('model', [10.0]), mode='train_step', with_cp=False)
    old_train = dict(_row('model', [10.0], group=None), mode='train_step', with_cp=True)
    keys = done_keys([old, new, failed, train, old_train])
    assert keys == {row_key(new), row_key(failed), row_key(train)}
    assert done_keys([old, new, failed, train, old_train], retry_failed=True) == {row_key(new), row_key(train)}


# A second head: YOLOv4-CSP (multi-label test, per-class NMS) through its adapter.
TINY_YOLOV4_CSP = {'model.backbone.widen_factor': 0.25, 'model.backbone.deepen_factor': 0.34,
                   'model.neck.widen_factor': 0.25, 'model.neck.in_channels': [64, 128, 256],
                   'model.bbox_head.widen_factor': 0.25}


def test_the_yolov4_csp_detector_gets_the_controlled_workload_and_folds_throughout():
    specs = load_model_specs(str(REPO / 'configs' / 'yolov4_csp_coco.py'), cfg_options=TINY_YOLOV4_CSP)
    settings = BenchmarkSettings(resolutions=(128, ), batch_sizes=(2, ), variants=('mmdet', 'eager'), threads=1,
                                 candidates=500, **dict(QUICK, repeats=2))
    rows = run_benchmark(specs, settings, log=lambda line: None)
    assert [row['status'] for row in rows] == ['ok'] * 4
    for row in rows:
        assert row['workload'].startswith('controlled: 500 candidates')
        # (box, class) pairs over the thresholds of the official test, counted on each variant's own path.
        assert abs(row['nms_candidates_per_image'] - 500) <= 2
        assert row['folded_norms'] > 0 and row['foldable_norms_left'] == 0
    detections = [row['detections_per_image'] for row in rows if row['mode'] == 'end2end']
    assert max(detections) - min(detections) <= 1 and min(detections) > 0


def test_the_csv_writes_lists_of_numbers_and_of_names():
    """Per-repeat times are numbers, a runtime row's session settings names (``onnxruntime+parallel``); the stream
    runs of issue 35 measured every row and then died writing results.csv."""
    rows = [dict(model='parnet', times_ms=[12.345678, 13.0], session_options=['parallel']),
            dict(model='baseline', times_ms=[20.0], session_options=[])]
    lines = render_csv(rows).splitlines()
    assert lines == ['model,times_ms,session_options', 'parnet,12.35 13,parallel', 'baseline,20,']
