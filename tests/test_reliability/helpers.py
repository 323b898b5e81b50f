"""Broken checkpoint files, and a way to run the tools in-process."""
import os
import runpy
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Exploit:
    """Pickles as a call of ``touch marker``: loading it unsafely would create the marker."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (['touch', self.marker], ))


def truncate(path, keep=0.5):
    """What a process killed during a plain (non-atomic) save leaves: the file cut short."""
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def run_tool(capsys, tool, *args):
    """Run ``tools/<tool>`` in this process; returns (exit code, stdout, stderr).

    An exception other than SystemExit propagates: a traceback is a failure of the test.
    """
    argv = sys.argv
    sys.argv = [tool, *map(str, args)]
    try:
        runpy.run_path(os.path.join(ROOT, 'tools', tool), run_name='__main__')
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err
