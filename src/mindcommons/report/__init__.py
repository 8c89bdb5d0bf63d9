"""Run reports: ``report.json`` and one self-contained, offline ``report.html``."""

from mindcommons.report.runinfo import RunInfo, package_versions
from mindcommons.report.writer import SCHEMA_VERSION, report_dict, write_report

__all__ = ["SCHEMA_VERSION", "RunInfo", "package_versions", "report_dict", "write_report"]
