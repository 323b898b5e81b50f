"""The one place that silences known-harmless third-party warnings, for the command-line tools.

Each tool calls :func:`filter_known_warnings` first thing, so that its own
progress and results are not buried under a screen of warnings that no user
can act on. The library itself filters nothing: a program importing
``parnet_det`` keeps every warning. A warning is listed here only if it comes
from a dependency, says nothing about the user's data, config or model, and
was seen in this project's runs.
"""
import warnings

# (category, start of the message (a regular expression), where it comes from and why it is harmless)
KNOWN_HARMLESS_WARNINGS = (
    (Warning, r'pkg_resources is deprecated as an API',
     "setuptools, on mmengine's package look-ups (mmengine.utils.package_utils): a note to mmengine's authors"),
    (UserWarning, r'torch\.meshgrid: in an upcoming release, it will be required to pass the indexing argument',
     "torch, on a dependency's meshgrid call: the current default is the one it relies on"),
    (DeprecationWarning, r"__array__ implementation doesn't accept a copy keyword",
     'numpy 2, on pycocotools (and others) converting arrays: the conversion still happens, with a copy'),
    (UserWarning, r'Warning: The (bbox|polygon|text) is out of bounds',
     "mmengine's visualizer, on a detection that reaches past the image's edge: it is drawn clipped"),
)


def filter_known_warnings() -> None:
    """Ignore the warnings of :data:`KNOWN_HARMLESS_WARNINGS` in this process (and in the child processes
    forked from it); every other warning stays visible."""
    for category, message, _source in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)
