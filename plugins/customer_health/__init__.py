"""Customer Health Workflows: loading, quality, reporting and the chw CLI."""
