-- The weights in force per segment: a segment's own rows in the health_score_weights seed,
-- else the `default` rows. weights_version is an md5 of the whole seed, stored on every
-- customer_health row so a score can be traced to the rules that produced it. The
-- segments are var segments (dbt_project.yml).
with seed as (
    select lower(trim(segment)) as segment, lower(trim(component)) as component, weight
    from {{ ref('health_score_weights') }}
),
version as (
    select md5(string_agg(segment || '|' || component || '|' || weight::text, ';'
                          order by segment, component)) as weights_version
    from seed
),
segments as (
    select distinct segment from seed where segment <> 'default'
    union
    select unnest(array[{{ segment_literals() }}])
)
select
    s.segment,
    max(w.weight) filter (where w.component = 'engagement') as engagement_weight,
    max(w.weight) filter (where w.component = 'support') as support_weight,
    max(w.weight) filter (where w.component = 'sentiment') as sentiment_weight,
    max(w.weight) filter (where w.component = 'billing') as billing_weight,
    max(w.segment) as weights_from,
    (select weights_version from version) as weights_version
from segments as s
join seed as w
    on w.segment = case
        when exists (select 1 from seed where seed.segment = s.segment) then s.segment
        else 'default'
    end
group by s.segment
