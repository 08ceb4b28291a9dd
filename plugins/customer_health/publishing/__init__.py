"""Publishing: write-audit-publish of the built marts into `marts`, and the analyst role's grants.

See docs/marts.md and docs/nightly.md.
"""
