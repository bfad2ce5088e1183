"""The lab loop: red-team -> guard -> re-attack -> evals -> SAE + auto-interp -> scorecard -> report.

Public API:
    LabConfig, load_lab_config, config_from_dict, LabConfigError, STAGES: the lab config.
    run_lab, LabError: run or resume the loop.
    build_lab_results, compute_strategy: the lab results and report from any workspace.
"""

from alignlab.lab.config import STAGES, LabConfig, LabConfigError, config_from_dict, load_lab_config
from alignlab.lab.results import build_lab_results, compute_strategy
from alignlab.lab.runner import LabError, run_lab

__all__ = ["STAGES", "LabConfig", "LabConfigError", "LabError", "build_lab_results", "compute_strategy",
           "config_from_dict", "load_lab_config", "run_lab"]
