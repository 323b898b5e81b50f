"""What the rows of a benchmark mean, and the ratios between them."""
import statistics
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..deploy import RuntimeVariant
from ..utils.time_limit import TimeLimitExceeded
from .settings import MMDET_VARIANT

TRAIN_MODE = 'train_step'
PARITY_FAILED = 'parity_failed'
# What identifies a row: a resumed run measures only the keys it does not have yet.
ROW_KEY_FIELDS = ('hardware', 'model', 'form', 'variant', 'precision', 'resolution', 'batch_size', 'mode', 'with_cp')

# Rows compared with the baseline agree on all of these.
RATIO_MATCH_KEYS = ('hardware', 'resolution', 'batch_size', 'precision', 'form', 'mode', 'variant', 'with_cp')
# Rows compared with the reference variant (the first of --variants) agree on all of these.
VARIANT_MATCH_KEYS = ('hardware', 'model', 'resolution', 'batch_size', 'precision', 'form', 'mode', 'with_cp')
MODE_TITLES = {
    'network': ('Network only, the same timed scope in every variant and runtime (from the letterboxed pixels of '
                'a batch already on the device: normalisation, backbone + neck + head and box decoding; no score '
                'threshold, no NMS)'),
    'end2end': ('End to end (uint8 HWC images in host memory -> pre-processing, network, box decoding and '
                'NMS: boxes in original pixels)'),
    TRAIN_MODE: ('Training step (data pre-processing, forward, loss, backward, optimizer step; AMP for fp16/bf16; '
                 'the batch already in memory)'),
}

# How a row names the path it ran on, in words (no variant runs TensorRT: no row may say so).
PATH_WORDS = {MMDET_VARIANT: 'mmdet (model._forward / test_step)', 'eager': 'PyTorch eager',
              'streams': 'parallel CUDA streams', 'channels_last': 'channels-last', 'compile': 'torch.compile',
              'max_autotune': 'torch.compile max-autotune', 'cuda_graph': 'CUDA graphs',
              'onnxruntime': 'ONNX Runtime', 'openvino': 'OpenVINO', 'onnxruntime-int8': 'ONNX Runtime',
              'openvino-int8': 'OpenVINO', 'parallel': 'parallel execution', 'tensor_parallel': 'tensor parallel',
              'unpinned': 'unpinned threads'}


def path_label(variant: str, precision: str) -> str:
    """The path a variant runs on, in words: its parts joined with ' + ', then the precision, e.g.
    'channels-last + torch.compile max-autotune + CUDA graphs, fp16' ('int8' for a runtime's INT8 graph)."""
    runtime = RuntimeVariant.parse(variant)
    shown = runtime.precision if runtime is not None and runtime.precision == 'int8' else precision
    return ' + '.join(PATH_WORDS[name] for name in variant.split('+')) + f', {shown}'


def row_key(row: dict) -> tuple:
    return tuple(row.get(field) for field in ROW_KEY_FIELDS)


def failed_row_fields(failure: Exception) -> dict:
    """What a row that could not be measured keeps instead of its timing: ``status`` ('timeout' or
    'error') and ``error``."""
    if isinstance(failure, TimeLimitExceeded):
        return dict(status='timeout', error=str(failure))
    return dict(status='error', error=f'{type(failure).__name__}: {failure}'.splitlines()[0])


def latest_rows(rows: List[dict]) -> List[dict]:
    """One row per :func:`row_key`, the last one written (a retried row replaces its failure), in order."""
    latest = {row_key(row): row for row in rows}
    return [row for row in rows if latest[row_key(row)] is row]


def legacy_scope_note(rows: List[dict]) -> Optional[str]:
    """A line for network rows of PyTorch written before every row recorded its ``timed_scope`` (issue 32),
    whose timer held less than the runtimes'; None where there are none."""
    if not any(row['mode'] == 'network' and 'timed_scope' not in row
               and RuntimeVariant.parse(row.get('variant', MMDET_VARIANT)) is None for row in rows):
        return None
    return ('**Timed with a narrower scope**: the PyTorch network rows here (mmdet, eager and the other engine '
            'variants) were measured before the scope was made the same everywhere: their timer started from the '
            'normalised batch (normalisation outside it) and decoded the boxes of YOLOX heads only (mmdet: none), '
            'while the ONNX Runtime and OpenVINO rows hold normalisation and decoding. Not re-timed.')


def parity_status(row: dict) -> dict:
    """``status`` of a timed row: 'ok', or 'parity_failed' with ``error`` where the runtime's outputs differ from
    PyTorch's beyond their tolerance (``parity_*`` of :class:`~parnet_det.deploy.RuntimeParity`)."""
    if row.get('parity_passed', True):
        return dict(status='ok')
    number = lambda key: f'{row[key]:.3g}' if isinstance(row[key], (int, float)) else row[key]  # or 'inf', 'nan'
    return dict(status=PARITY_FAILED, error=(
        f'runtime parity with PyTorch failed: boxes {number("parity_boxes_max_abs")} px (tolerance '
        f'{number("parity_box_atol")}), scores {number("parity_scores_max_abs")} (tolerance '
        f'{number("parity_score_atol")}); its timing is kept out of every table and ratio'))


def measured(rows: List[dict]) -> List[dict]:
    """The rows that hold a valid measurement: not the timed-out or failed ones, nor those of a runtime whose
    parity with PyTorch failed (also rows written before that was a status)."""
    return [row for row in rows if row.get('status', 'ok') == 'ok' and row.get('parity_passed', True)]


def parity_failures(rows: List[dict]) -> Optional[str]:
    """One line naming the rows whose runtime parity failed (a command exits non-zero with it); None if none."""
    failed = [row for row in rows if row.get('parity_passed', True) is False]
    if not failed:
        return None
    return (f'{len(failed)} row(s) failed their runtime parity with PyTorch and are kept out of every table and '
            'ratio: ' + ', '.join(f'{row["model"]} {row["variant"]} {row["resolution"]}px {row["mode"]}'
                                  for row in failed))


def ratio_spread(row: dict, reference: dict) -> Tuple[float, Optional[float], Optional[float], bool]:
    """``row``'s speed over ``reference``'s (images/s at the same batch size: the inverse ms ratio), as
    (median, low, high, paired).

    Rows timed together (same ``timing_group``, repeats interleaved) pair repeat by repeat: the ratio of
    each round, their median, min and max. Others (different runs) give the ratio of the medians and the
    widest interval their repeats allow (reference's slowest over row's fastest, and back). With a single
    repeat on either side there is no spread: low and high are None.
    """
    row_ms, reference_ms = (r.get('ms_per_batch_repeats') or [r['ms_per_batch_median']] for r in (row, reference))
    paired = (row.get('timing_group') is not None and row.get('timing_group') == reference.get('timing_group')
              and len(row_ms) == len(reference_ms))
    if paired:
        ratios = [ref / ms for ref, ms in zip(reference_ms, row_ms)]
        median, low, high = statistics.median(ratios), min(ratios), max(ratios)
    else:
        median = statistics.median(reference_ms) / statistics.median(row_ms)
        low, high = min(reference_ms) / max(row_ms), max(reference_ms) / min(row_ms)
    if min(len(row_ms), len(reference_ms)) < 2:
        return median, None, None, paired
    return median, low, high, paired


def verdict(low: Optional[float], high: Optional[float]) -> str:
    """'faster' / 'slower' where the whole spread of a ratio lies above / below 1, else 'within noise'
    ('no spread' without one: a single repeat)."""
    if low is None or high is None:
        return 'no spread (one repeat)'
    return 'faster' if low > 1 else 'slower' if high < 1 else 'within noise'


def format_spread(low: Optional[float], high: Optional[float], paired: bool) -> str:
    """``1.10-1.31`` (``, unpaired`` for rows not timed together); empty without a spread."""
    if low is None or high is None:
        return ''
    return f'{low:.2f}-{high:.2f}' + ('' if paired else ', unpaired')


def _add_ratios(rows: List[dict], is_reference, match_keys: Sequence[str], field: str) -> None:
    """Set ``field`` (median) and ``field``_min / _max / _paired on every row: its speed over that of the
    reference row agreeing with it on ``match_keys`` (None without one)."""
    valid = {id(row) for row in measured(rows)}
    references = {tuple(row.get(key) for key in match_keys): row for row in measured(rows) if is_reference(row)}
    for row in rows:
        reference = references.get(tuple(row.get(key) for key in match_keys))
        spread = (ratio_spread(row, reference) if reference is not None and id(row) in valid
                  else (None, None, None, None))
        row.update({field: spread[0], f'{field}_min': spread[1], f'{field}_max': spread[2],
                    f'{field}_paired': spread[3]})


def add_baseline_ratios(rows: List[dict], baselines: Union[None, str, Dict[str, str]]) -> None:
    """Set every row's ``baseline`` and ``fps_ratio_to_baseline`` (its images/s over the baseline's; above 1:
    faster) with its spread (``_min``, ``_max``, ``_paired``: see :func:`ratio_spread`).

    Args:
        rows (list[dict]): Rows of :func:`~.runner.run_benchmark`, updated in place.
        baselines (str | dict, optional): The baseline of every row, or model name -> its baseline (a
            model not named has none); without one every ratio is None.
    """
    if not isinstance(baselines, dict):
        baselines = {row['model']: baselines for row in rows}
    for row in rows:
        row['baseline'] = baselines.get(row['model'])
    # The reference row of a row is its baseline's at the same setting.
    _add_ratios(rows, lambda row: row['model'] == row['baseline'], ('baseline', *RATIO_MATCH_KEYS),
                'fps_ratio_to_baseline')


def add_variant_speedups(rows: List[dict], reference_variant: str) -> None:
    """Set every row's ``speedup_over_reference_variant`` (its images/s over the same model's in
    ``reference_variant``, the first of ``--variants``, at the same setting) with its spread.

    Args:
        rows (list[dict]): Rows of :func:`~.runner.run_benchmark`, updated in place.
        reference_variant (str): The variant the others are compared with.
    """
    _add_ratios(rows, lambda row: row['variant'] == reference_variant, VARIANT_MATCH_KEYS,
                'speedup_over_reference_variant')


def numeric_order(value) -> tuple:
    """Sort key: numbers by value before text (1280 after 512), None last."""
    if value is None:
        return (2, 0, '')
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, '')
    return (1, 0, str(value))
