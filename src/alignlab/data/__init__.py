"""Dataset types and loaders: the packaged red-team behavior set and the field's formats."""

from alignlab.data.behaviors import filter_behaviors, load_behaviors, load_packaged
from alignlab.data.formats import load_harmbench_csv, load_jailbreakbench_csv, load_prompt_file
from alignlab.data.types import Behavior, DataError

__all__ = [
    "Behavior",
    "DataError",
    "filter_behaviors",
    "load_behaviors",
    "load_harmbench_csv",
    "load_jailbreakbench_csv",
    "load_packaged",
    "load_prompt_file",
]
