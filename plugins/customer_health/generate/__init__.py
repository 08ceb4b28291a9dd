"""Sample exports: a deterministic, streaming simulator of the CRM and billing systems.

`generate_landing(out, accounts=..., start=..., days=..., seed=...)` writes a landing area
that follows `shared/spec/exports.md`: `<out>/<system>/<YYYY-MM-DD>/<entity>.csv` plus a
`_manifest.json` (rows, sha256, `full`) for both systems on every export date.

Exports and time
    Simulation time runs day by day in UTC. The first export (`start`, `"full": true`)
    holds the whole history before `start`: accounts are created over the
    `history_days` (default 730) before it, on a growing curve, and their history so far
    is simulated. Each following export date D (up to `start + days - 1`) is a delta that
    holds every record version whose `updated_at` (for NPS answers, `responded_at`) falls
    on calendar day D-1 UTC, i.e. in [D-1 00:00Z, D 00:00Z): the nightly export taken at
    midnight. Every folder has all entity files (header only when nothing changed).
    Some accounts (up to ~20%, fewer for short runs) are created during the delta period.

The model
    Each account has a hidden health h: a mean-reverting random walk (Ornstein-Uhlenbeck
    around a per-account baseline) with rare shocks (mostly bad news; a champion contact
    leaving is one), pulled down while the account is neglected; p = sigmoid(h) in (0, 1)
    drives everything:
    - activities (calls, e-mails, meetings, QBRs, site visits, webinars): outbound ones come
      from the account team at a segment-specific rate, and stop entirely during neglect
      episodes (nobody reaches out for 1.5 to several months); inbound ones grow with
      health (engaged customers talk to us). Weekends are quiet, late December and August
      slower, times follow the region's business hours. A few activities are logged days
      late (occurred_at before the export window) and a few are edited later (new version).
    - support tickets: more of them, and more urgent, as health falls; slower to resolve;
      versions open -> pending -> solved -> closed; CSAT (half answer) lower when unhealthy.
    - NPS answers: a quarterly survey answered by ~30% of contacts; the score centres on
      1 + 9.5p, so healthy accounts give promoters and unhealthy ones detractors.
    - billing: segment-specific plans, seat counts and intervals (yearly with a discount);
      seats go up when healthy and down (sometimes with a plan downgrade) when not, each a
      new subscription version with its new mrr. Invoices at each term start; card payers
      pay at once and fail more often when unhealthy (failed payment with failure_code ->
      subscription past_due -> retries after 3, 5 and 7 days -> uncollectible + unpaid ->
      canceled: involuntary churn); enterprise accounts pay on 30-day terms (draft -> open
      -> paid, late payers go past_due). 1% of invoices are voided and reissued, 0.6% of
      payments refunded later. Trials (14 days, `trialing`) convert more often when healthy
      or lapse (`canceled`). At each renewal an account churns with a probability that
      grows steeply as health falls (`canceled` with `canceled_at`); churned accounts may
      return months later (a new subscription on the same customer: a reactivation), and a
      few long-churned accounts are deleted in the CRM (`is_deleted = true` versions of the
      account and its contacts). Currencies are fixed per customer (USD, EUR, GBP, CAD, AUD,
      CHF, SEK, BRL by region).
    - CRM: segments (enterprise/mid_market/smb), regions (na/emea/apac/latam), 7 account
      teams with 3-6 owners each; accounts occasionally change owner or team, an empty
      industry gets filled in later, contacts join and leave (new primary when one leaves).
    Text is fake (word lists), with commas, quotes and newlines in subjects and comments.
    8% of rows write their timestamps with a local offset (e.g. `+01:00`, `-05:00`,
    `+05:30`) instead of `Z`.
    Ids: `ACC-0000123`, contacts `CON-0000123-001`, customers `cus_0000123` (one per
    account), subscriptions `sub_0000123_2` (the account's 2nd), and counters for
    `act_`, `tkt_`, `nps_`, `in_` and `py_`.

Determinism and cost
    Same arguments and seed give byte-identical files: numpy's PCG64 generator (vector
    draws) and `random.Random` (scalar draws) seeded from `seed`, no wall clock, no
    set/dict-order dependence, manifests with sorted keys. Memory holds per-account state
    and pending future events only; rows go to the files day by day.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

from .simulator import GenerateSummary, Simulator

__all__ = ["GenerateSummary", "Simulator", "generate_landing"]


def generate_landing(out: str | Path, *, accounts: int, start: datetime.date, days: int,
                     seed: int, progress: Callable[[int, int], None] | None = None,
                     history_days: int = 730, overwrite: bool = False,
                     crm_format: str = "contract",
                     billing_format: str = "contract",
                     invoice_only_share: float = 0.0) -> GenerateSummary:
    """Writes `days` export dates (the first one full, then nightly deltas) under `out`.

    `invoice_only_share`: the share of accounts that buy order by order with no
    subscription (each order invoiced and paid by card at once; orders come at a rate and
    stop for good with a chance after each order, both driven by the hidden health: the
    buy-till-you-die story that BG/NBD models). 0 leaves every other draw as it was.

    `crm_format` / `billing_format`: `contract`, or an exporter format (a shipped one's
    name or a declaration file's path, as CHW_CRM_FORMAT takes) in whose files the same
    simulated history is written (docs/exporters.md).

    `progress(done_days, total_days)` is called after each export date is written. Raises
    FileExistsError when `out/crm` or `out/billing` already hold files, unless `overwrite`
    (which removes those two folders first).
    """
    sim = Simulator(accounts=accounts, start=start, days=days, seed=seed,
                    history_days=history_days, invoice_only_share=invoice_only_share)
    chosen = {"crm": crm_format, "billing": billing_format}
    if all(name == "contract" for name in chosen.values()):
        return sim.run(out, progress=progress, overwrite=overwrite)
    from customer_health.loading.formats import load_format

    from .output import LandingWriter

    formats = {system: load_format(name, system) for system, name in chosen.items()
               if name != "contract"}
    LandingWriter.prepare(Path(out), overwrite)
    return sim.run(out, progress=progress, writer=LandingWriter(Path(out), formats=formats))
