"""The README's main command (`make demo`).

What exists so far: the environment report and the backbone table (parameters,
FLOPs and measured depth of every ParNet preset, ParNet-XL-CSP and the
CSPDarknet53s baseline), all computed live from the models.
"""
import time

from parnet_det.analysis.summary import backbone_summary_rows, format_summary_table
from parnet_det.utils.collect_env import collect_env


def main():
    for name, value in collect_env().items():
        print(f'{name}: {value}')
    start = time.perf_counter()
    print('\nBackbones (classifier form with a 1000-class head for params; FLOPs = 2 x multiply-adds '
          'of the feature extractor up to its last output; depth = longest path of conv/linear layers):\n')
    print(format_summary_table(backbone_summary_rows()))
    print(f'\n(computed in {time.perf_counter() - start:.0f} s)')


if __name__ == '__main__':
    main()
