"""Print the versions of the stack and the device (attach this to bug reports)."""
from parnet_det.utils.collect_env import collect_env

if __name__ == '__main__':
    for name, value in collect_env().items():
        print(f'{name}: {value}')
