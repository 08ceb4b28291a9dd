"""The export loader: landing-area CSV files into raw.*, with quarantine and ledger.

See docs/loading.md for what happens on every failure path.
"""

from customer_health.loading.landing import LoadError, export_folder_status
from customer_health.loading.loader import load_export, load_file
from customer_health.loading.ranges import RangeResult, load_range
from customer_health.loading.results import FileResult, format_results

__all__ = [
    "FileResult",
    "LoadError",
    "RangeResult",
    "export_folder_status",
    "format_results",
    "load_export",
    "load_file",
    "load_range",
]
