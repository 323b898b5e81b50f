"""What the rows of a benchmark mean, and the ratios between them."""
from typing import List, Optional, Sequence

from ..utils.time_limit import TimeLimitExceeded

TRAIN_MODE = 'train_step'
# What identifies a row: a resumed run measures only the keys it does not have yet.
ROW_KEY_FIELDS = ('hardware', 'model', 'form', 'variant', 'precision', 'resolution', 'batch_size', 'mode', 'with_cp')

# Rows compared with the baseline agree on all of these.
RATIO_MATCH_KEYS = ('hardware', 'resolution', 'batch_size', 'precision', 'form', 'mode', 'variant', 'with_cp')
# Rows compared with the reference variant (the first of --variants) agree on all of these.
VARIANT_MATCH_KEYS = ('hardware', 'model', 'resolution', 'batch_size', 'precision', 'form', 'mode', 'with_cp')
MODE_TITLES = {
    'network': ('Network only (on a pre-processed batch on the device: backbone + neck + head; the engine '
                'variants also decode the boxes, before NMS)'),
    'end2end': ('End to end (uint8 HWC images in host memory -> pre-processing, network, box decoding and '
                'NMS: boxes in original pixels)'),
    TRAIN_MODE: ('Training step (data pre-processing, forward, loss, backward, optimizer step; AMP for fp16/bf16; '
                 'the batch already in memory)'),
}


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


def measured(rows: List[dict]) -> List[dict]:
    """The rows that hold a measurement (not the timed-out ones)."""
    return [row for row in rows if row.get('status', 'ok') == 'ok']


def _ratios(rows: List[dict], is_reference, match_keys: Sequence[str]) -> List[Optional[float]]:
    """Each row's images/s over that of the reference row agreeing with it on ``match_keys``."""
    reference_fps = {tuple(row.get(key) for key in match_keys): row['images_per_s'] for row in measured(rows)
                     if is_reference(row)}
    ratios = []
    for row in rows:
        reference = reference_fps.get(tuple(row.get(key) for key in match_keys))
        ratios.append(row['images_per_s'] / reference if reference and 'images_per_s' in row else None)
    return ratios


def add_baseline_ratios(rows: List[dict], baseline: Optional[str]) -> None:
    """Set every row's ``fps_ratio_to_baseline``: its images/s over the baseline's.

    Args:
        rows (list[dict]): Rows of :func:`~.runner.run_benchmark`, updated in place.
        baseline (str, optional): The baseline's model name; without one every ratio is None.
    """
    for row, ratio in zip(rows, _ratios(rows, lambda row: row['model'] == baseline, RATIO_MATCH_KEYS)):
        row['fps_ratio_to_baseline'] = ratio


def add_variant_speedups(rows: List[dict], reference_variant: str) -> None:
    """Set every row's ``speedup_over_reference_variant``: its images/s over the same model's in
    ``reference_variant`` (the first of ``--variants``) at the same setting.

    Args:
        rows (list[dict]): Rows of :func:`~.runner.run_benchmark`, updated in place.
        reference_variant (str): The variant the others are compared with.
    """
    reference = lambda row: row['variant'] == reference_variant
    for row, ratio in zip(rows, _ratios(rows, reference, VARIANT_MATCH_KEYS)):
        row['speedup_over_reference_variant'] = ratio
