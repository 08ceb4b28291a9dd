{#- The MRR bridge of revenue_retention: ending = starting + new + expansion + reactivation
    - contraction - churned, and ending equals the month's total MRR in revenue_movements
    (for `segment = 'all'` the whole; otherwise that segment's). -#}
{% test mrr_bridge(model, movements) %}
with totals as (
    select month, segment, sum(mrr) as total_mrr
    from {{ movements }}
    group by month, segment
    union all
    select month, 'all', sum(mrr)
    from {{ movements }}
    group by month
)
select r.month, r.segment, r.ending_mrr, t.total_mrr
from (select * from {{ model }}) as r
left join totals as t on t.month = r.month and t.segment = r.segment
where r.ending_mrr <> r.starting_mrr + r.new_mrr + r.expansion_mrr + r.reactivation_mrr
        - r.contraction_mrr - r.churned_mrr
   or r.ending_mrr <> coalesce(t.total_mrr, 0)
{% endtest %}
