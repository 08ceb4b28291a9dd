{#- The weights of each group sum to 1 (to 4 decimals). -#}
{% test weights_sum_to_one(model, group_by, weight_column='weight') %}
select {{ group_by }}, sum({{ weight_column }}) as total_weight
from {{ model }}
group by {{ group_by }}
having round(sum({{ weight_column }}), 4) <> 1
{% endtest %}
