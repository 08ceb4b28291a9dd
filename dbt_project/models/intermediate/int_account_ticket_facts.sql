-- Support ticket facts per account at the end of as_of_date (window: support_window_days;
-- macro ticket_facts, shared with the back-test).
select
    account_id,
    {{ ticket_facts(as_of_date()) }}
from {{ ref('stg_crm__support_tickets') }}
where opened_at < {{ as_of_end() }}
group by account_id
