"""Print the versions of the stack and the device (attach this to bug reports)."""
from parnet_det.utils.collect_env import collect_env
from parnet_det.utils.warnings_filter import filter_known_warnings

if __name__ == '__main__':
    filter_known_warnings()
    for name, value in collect_env().items():
        print(f'{name}: {value}')
