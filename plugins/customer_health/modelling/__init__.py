"""Modelling: the dbt build of the staging, intermediate and marts models.

The dbt runner (transform), the Cosmos task group (dbt_cosmos), the vars the marts share
(dbt_facts) and a night's stored run state (dbt_state). See docs/marts.md.
"""
