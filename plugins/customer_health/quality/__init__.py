"""Data-quality gates (Great Expectations, file context under `expectations/`).

`validate_raw` checks one night of raw data after loading, `validate_marts` the marts
of a build (in whichever schema it was built); both store one row per expectation in
`audit.quality_results` and return a `QualityReport`, whose `raise_for_failures()`
raises `QualityGateFailed` naming each blocking failure. `build_data_docs` renders the
GX Data Docs site. See docs/quality.md.
"""

from customer_health.quality.results import Outcome, QualityGateFailed, QualityReport

__all__ = [
    "Outcome",
    "QualityGateFailed",
    "QualityReport",
    "build_data_docs",
    "validate_marts",
    "validate_raw",
]


def __getattr__(name: str):
    # GX takes seconds to import: only the functions that need it pull it in.
    if name == "validate_raw":
        from customer_health.quality.raw import validate_raw

        return validate_raw
    if name == "validate_marts":
        from customer_health.quality.marts import validate_marts

        return validate_marts
    if name == "build_data_docs":
        from customer_health.quality.docs import build_data_docs

        return build_data_docs
    raise AttributeError(name)
