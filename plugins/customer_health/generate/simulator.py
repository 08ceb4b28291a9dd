"""The account simulator behind `generate_landing` (the model is described in the package doc).

Performance notes: per-day work over all accounts is vectorised with numpy (health walk,
Poisson event counts, one uniform draw for the rare events); rows are built in plain Python
only for the accounts that have an event. Scalar per-account state lives in Python lists
(fast scalar access), state that the vector step reads lives in numpy arrays.
"""

from __future__ import annotations

import math
import random
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import numpy as np

from customer_health.contract import ACTIVITY_TYPES, SEGMENTS

from . import words
from .output import DAY, Clock, LandingWriter, quote

# Entity positions in contract.ENTITIES (and so in LandingWriter).
ACC, CON, ACT, TKT, NPS, CUS, SUB, INV, PAY = range(9)

ENT, MID, SMB = 0, 1, 2  # indexes into contract.SEGMENTS
SEG_P = (0.10, 0.30, 0.60)
REGIONS = ("na", "emea", "apac", "latam")
REGION_P = (0.42, 0.33, 0.15, 0.10)
#: Offsets some exporter rows are written in, per region (seconds, suffix).
REGION_OFFSETS = (
    ((-5 * 3600, "-05:00"), (-8 * 3600, "-08:00"), (-4 * 3600, "-04:00")),
    ((3600, "+01:00"), (7200, "+02:00"), (0, "+00:00")),
    ((8 * 3600, "+08:00"), (10 * 3600, "+10:00"), (19800, "+05:30")),
    ((-3 * 3600, "-03:00"), (-6 * 3600, "-06:00")),
)
#: Where business hours are, per region (UTC offset in seconds).
REGION_LOCAL = (-5 * 3600, 3600, 8 * 3600, -3 * 3600)
OFFSET_SHARE = 0.08  # share of rows written with a local offset instead of `Z`

TEAMS = ("na-enterprise", "na-growth", "na-smb", "emea-enterprise", "emea-growth", "apac",
         "latam")
OWNERS_PER_TEAM = (5, 6, 4, 5, 6, 4, 3)
HOME_TEAM = ((0, 1, 2), (3, 4, 4), (5, 5, 5), (6, 6, 6))  # [region][segment]

CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "CHF", "SEK", "BRL")
FX = (1.0, 0.92, 0.79, 1.36, 1.52, 0.88, 10.5, 5.0)  # per USD, for price lists
REGION_CURRENCY = (
    ((0, 0.85), (3, 0.15)),
    ((1, 0.55), (2, 0.30), (5, 0.07), (6, 0.08)),
    ((4, 0.5), (0, 0.5)),
    ((7, 0.6), (0, 0.4)),
)
PLANS = ("starter", "growth", "enterprise")
SEAT_USD_CENTS = (2000, 4000, 7500)  # list price per seat per month
SEG_PLAN = (2, 1, 0)
SEATS_MEDIAN = (350, 40, 6)
YEARLY_P = (0.7, 0.4, 0.15)
TRIAL_P = (0.0, 0.25, 0.35)
YEARLY_DISCOUNT = 85  # percent of the monthly price
# invoice-only accounts (order by order, no subscription): an order's typical amount, orders
# per 30 days (base + health * p) and the chance to drop out after an order (base + ill *
# (1 - p)^2); their CRM engagement while they buy
ORDER_USD_CENTS = 40000
ORDER_RATE_BASE, ORDER_RATE_HEALTH = 0.3, 2.2
ORDER_DROPOUT_BASE, ORDER_DROPOUT_ILL = 0.02, 0.35
ORDER_ENGAGEMENT = 0.4

STATUSES = ("trialing", "active", "past_due", "canceled", "unpaid")
TRIALING, ACTIVE, PAST_DUE, CANCELED, UNPAID = range(5)
FAILURE_CODES = ("card_declined", "insufficient_funds", "expired_card", "processing_error",
                 "do_not_honor")

# Health: a mean-reverting random walk of a latent h; p = sigmoid(h) is the hidden health.
THETA, SIGMA = 0.02, 0.10
P_SHOCK, SHOCK_MEAN, SHOCK_SD = 0.002, -0.9, 0.7
NEGLECT_DRAG = 0.006

# Rates per account and (week)day, by segment.
OUT_RATE = (0.9, 0.28, 0.08)
IN_RATE = (0.45, 0.14, 0.05)
TKT_RATE = (0.05, 0.017, 0.006)
NPS_RATE = 0.3 / 90  # per contact and day: a survey a quarter, 30% answer
CONTACTS0 = ((4, 10), (2, 5), (1, 3))
CONTACT_ADD = (0.012, 0.005, 0.002)
RARE_UPPER = 0.05  # >= the sum of the per-day probabilities of the rare events below

OUT_TYPES = (0.50, 0.22, 0.15, 0.04, 0.02, 0.0, 0.07)  # ACTIVITY_TYPES order
IN_TYPES = (0.55, 0.25, 0.05, 0.0, 0.0, 0.10, 0.05)
RESP_MEAN = {"urgent": 1200, "high": 4 * 3600, "normal": 10 * 3600, "low": 30 * 3600}
SOLVE_MEAN = {"urgent": 8 * 3600, "high": DAY, "normal": 2 * DAY, "low": 4 * DAY}


_TRANSLIT = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "ß": "ss", "å": "a"})


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _ascii(s: str) -> str:
    s = s.translate(_TRANSLIT)
    return "".join(
        c for c in unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
        if c.isalnum()
    ).lower()


def _cum(ps: tuple[float, ...]) -> np.ndarray:
    c = np.cumsum(ps)
    return c / c[-1]


@dataclass
class GenerateSummary:
    """What a `generate_landing` run wrote."""

    out: Path
    folders: int  # export folders per system (one per export date)
    first_export: date
    last_export: date
    accounts: int
    rows: dict[tuple[str, str], int]  # (system, entity) -> data rows over all folders
    total_rows: int
    seconds: float


class Simulator:
    """Simulates `accounts` accounts from `start - history_days` to the last export."""

    def __init__(self, *, accounts: int, start: date, days: int, seed: int,
                 history_days: int = 730, invoice_only_share: float = 0.0) -> None:
        if accounts < 1 or days < 1 or history_days < 0:
            raise ValueError("accounts and days must be >= 1, history_days >= 0")
        if not 0.0 <= invoice_only_share <= 1.0:
            raise ValueError("invoice_only_share must be between 0 and 1")
        self.invoice_only_share = invoice_only_share
        self.N, self.days, self.seed = accounts, days, seed
        self.start = start
        self.S = history_days  # simulation day of the first export
        self.day0 = start - timedelta(days=history_days)
        self.last_day = self.S + days - 2  # last simulated day (export date - 1)
        self.clock = Clock(self.day0, max(self.last_day, self.S) + 2)
        self.rnd = random.Random(f"chw-generate:{seed}:scalar")
        self.rng = np.random.Generator(np.random.PCG64(
            np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, 730_2026])))
        self._setup_people()
        self._setup_accounts()
        self.pending_rows: dict[int, list] = defaultdict(list)
        self.pending_actions: dict[int, list] = defaultdict(list)
        self.buf: list[list] = [[] for _ in range(9)]
        self.n = 0  # accounts created so far (they are created in index order)
        self.counters = {"act": 0, "tkt": 0, "nps": 0, "inv": 0, "pay": 0}
        self.unpaid: set[str] = set()  # ids of invoices not (yet) paid; membership only
        self.day = 0
        self.day_end = DAY

    # ----- set-up -----------------------------------------------------------------------
    def _setup_people(self) -> None:
        r = random.Random(f"chw-generate:{self.seed}:owners")
        self.owner_emails: list[str] = []
        self.team_owners: list[list[int]] = []
        for n in OWNERS_PER_TEAM:
            ids = []
            for _ in range(n):
                first, last = r.choice(words.FIRST_NAMES), r.choice(words.LAST_NAMES)
                ids.append(len(self.owner_emails))
                self.owner_emails.append(f"{_ascii(first)}.{_ascii(last)}@ourcompany.example")
            self.team_owners.append(ids)
        self.off_fmts = [
            [partial(self.clock.off, off_sec=o, suffix=s) for o, s in offs]
            for offs in REGION_OFFSETS
        ]
        self.first_ascii = [_ascii(x) for x in words.FIRST_NAMES]
        self.last_ascii = [_ascii(x) for x in words.LAST_NAMES]

    def _setup_accounts(self) -> None:
        N, rng = self.N, self.rng
        S, last = self.S, self.last_day
        window = last - S + 1  # simulated days after the first export
        if S == 0:
            share = 1.0
        elif window <= 0:
            share = 0.0
        else:
            share = min(0.2, 0.02 + 0.2 * window / 365)
        n_new = int(round(N * share))
        hist = N - n_new
        u = rng.random(hist)
        ramp = np.where(rng.random(hist) < 0.5, u, np.sqrt(u))  # a growing customer base
        d_hist = np.minimum((ramp * S).astype(np.int64), max(S - 1, 0))
        d_new = S + (rng.random(n_new) * max(window, 1)).astype(np.int64)
        self.created_day = np.sort(np.concatenate([d_hist, d_new]))

        seg = rng.choice(3, N, p=SEG_P)
        region = rng.choice(4, N, p=REGION_P)
        self.seg = seg.tolist()
        self.region = region.tolist()
        self.local_off = np.array(REGION_LOCAL, dtype=np.int64)[region]
        self.mu = rng.normal(0.7, 0.9, N) + np.where(seg == ENT, 0.3, 0.0)
        self.h = self.mu + rng.normal(0, 0.5, N)
        self.out_base = np.array(OUT_RATE)[seg]
        self.in_base = np.array(IN_RATE)[seg]
        self.tkt_base = np.array(TKT_RATE)[seg]
        # vector-step state
        self.live = np.zeros(N)  # 1.0 while the account has a live subscription
        self.eng = np.zeros(N)  # activity multiplier: 1 live, small when lapsed, 0 deleted
        self.nf = np.ones(N)  # 0.0 while neglected (no outbound touchpoints)
        self.ncon = np.zeros(N)  # alive contacts
        self.lapsed = np.zeros(N, dtype=bool)
        self.churn_day = np.zeros(N, dtype=np.int64)
        self.term_end = np.full(N, -1, dtype=np.int64)
        self.hsum = np.zeros(N)
        self.hcnt = np.zeros(N)
        # scalar state (Python lists: fast element access)
        self.aid = [f"ACC-{a:07d}" for a in range(N)]
        self.team = [HOME_TEAM[region[a]][seg[a]] for a in range(N)]
        self.owner = [0] * N
        self.industry = [-1] * N
        self.name: list[str] = [""] * N
        self.domain: list[str] = [""] * N
        self.created_t = [0] * N
        self.crm_t = [0] * N  # last updated_at of the account or one of its contacts
        self.bill_t = [0] * N  # last updated_at of the customer or subscription
        self.contacts: list[list[int]] = [[] for _ in range(N)]
        self.contact_t: list[list[int]] = [[] for _ in range(N)]
        self.next_contact = [0] * N
        self.primary = [-1] * N
        self.currency = [0] * N
        self.card = [True] * N
        self.bill_email = [""] * N
        self.cus_t = [0] * N
        self.sub_no = [0] * N
        self.status = [CANCELED] * N
        self.plan = [0] * N
        self.interval = [0] * N
        self.qty = [0] * N
        self.price = [0] * N
        self.started_t = [0] * N
        self.canceled_t = [0] * N
        self.term_date = [0] * N
        # accounts that buy order by order, without a subscription (a stream of draws of
        # their own: with a share of 0 the other accounts' history is unchanged)
        pick = random.Random(f"chw-generate:{self.seed}:invoice-only")
        self.invoice_only = [pick.random() < self.invoice_only_share for _ in range(N)]
        self.buying = [False] * N

    # ----- the loop -----------------------------------------------------------------------
    def run(self, out: str | Path, progress: Callable[[int, int], None] | None = None,
            overwrite: bool = False, writer: LandingWriter | None = None) -> GenerateSummary:
        """Writes the export folders under `out`, or hands them to `writer` (its own
        LandingWriter, e.g. one that only counts rows) and writes nothing itself."""
        t_start = time.perf_counter()
        out = Path(out)
        if writer is None:
            LandingWriter.prepare(out, overwrite)
            writer = LandingWriter(out)
        self.writer = writer
        for i, folder in enumerate(range(self.S, self.S + self.days)):
            writer.open(self.clock.date(folder), full=i == 0)
            for d in range(0, self.S) if i == 0 else (folder - 1,):
                self._day(d)
                for e, rows in enumerate(self.buf):
                    if rows:
                        writer.write(e, rows)
                        rows.clear()
            writer.close()
            if progress is not None:
                progress(i + 1, self.days)
        return GenerateSummary(
            out=out, folders=writer.folders, first_export=self.start,
            last_export=self.start + timedelta(days=self.days - 1), accounts=self.N,
            rows=dict(writer.totals), total_rows=sum(writer.totals.values()),
            seconds=time.perf_counter() - t_start,
        )

    def mean_health(self) -> dict[str, float]:
        """Each account's mean hidden health (0-1) over its live days (for tests)."""
        return {self.aid[a]: float(self.hsum[a] / self.hcnt[a])
                for a in range(self.N) if self.hcnt[a] > 0}

    def _emit(self, ent: int, t: int, row: list) -> None:
        if t < self.day_end:
            self.buf[ent].append(row)
        else:
            self.pending_rows[t // DAY].append((ent, row))

    def _at(self, t: int, fn: Callable, *args) -> None:
        """Schedules `fn(t, *args)` for time t (a later day, or later today)."""
        d = t // DAY
        if d <= self.day:
            fn(t, *args)
        else:
            self.pending_actions[d].append((fn, t, args))

    def _day(self, d: int) -> None:
        self.day, self.day_end = d, (d + 1) * DAY
        for ent, row in self.pending_rows.pop(d, ()):
            self.buf[ent].append(row)
        for fn, t, args in self.pending_actions.pop(d, ()):
            fn(t, *args)
        n = self.n
        if n:
            self._vector_step(d, n)
        while self.n < self.N and self.created_day[self.n] == d:
            self._create(self.n)
            self.n += 1

    def _vector_step(self, d: int, n: int) -> None:
        rng, r = self.rng, self.rnd
        h = self.h[:n]
        h += THETA * (self.mu[:n] - h) + SIGMA * rng.standard_normal(n)
        h -= NEGLECT_DRAG * (1.0 - self.nf[:n])
        u = rng.random(n)
        shocks = np.flatnonzero(u < P_SHOCK)
        if shocks.size:
            h[shocks] += rng.normal(SHOCK_MEAN, SHOCK_SD, shocks.size)
        p = 1.0 / (1.0 + np.exp(-h))
        live, eng = self.live[:n], self.eng[:n]
        self.hsum[:n] += p * live
        self.hcnt[:n] += live

        dd = self.day0 + timedelta(days=d)
        wd = dd.weekday()
        wf = 1.0 if wd < 5 else (0.12 if wd == 5 else 0.08)
        sf = 0.4 if (dd.month == 12 and dd.day > 20) else (0.8 if dd.month == 8 else 1.0)
        f = wf * sf
        self._activities(rng.poisson(self.out_base[:n] * eng * self.nf[:n] * f), True)
        self._activities(rng.poisson(self.in_base[:n] * eng * (0.3 + 1.2 * p) * f), False)
        tk = rng.poisson(self.tkt_base[:n] * live * (0.3 + 3.0 * (1.0 - p) ** 2)
                         * (1.0 if wd < 5 else 0.3))
        for a in np.flatnonzero(tk).tolist():
            for _ in range(int(tk[a])):
                self._ticket(a, float(p[a]))
        nps = rng.poisson(self.ncon[:n] * live * (NPS_RATE * (1.0 if wd < 5 else 0.3)))
        for a in np.flatnonzero(nps).tolist():
            for _ in range(int(nps[a])):
                self._nps(a, float(p[a]))
        # rare events: one uniform draw against an upper bound, resolved in Python
        u2 = rng.random(n)
        for a in np.flatnonzero((u2 < RARE_UPPER) & (eng > 0)).tolist():
            self._rare(a, float(u2[a]), float(p[a]), d, r)
        for a in np.flatnonzero(self.term_end[:n] == d).tolist():
            self._renew(a, float(p[a]))

    # ----- helpers ------------------------------------------------------------------------
    def _fmt(self, a: int) -> Callable[[int], str]:
        x = self.rnd.random()
        if x < OFFSET_SHARE:
            fmts = self.off_fmts[self.region[a]]
            return fmts[int(x * 1000) % len(fmts)]
        return self.clock.z

    def _person(self, a: int, k: int) -> tuple[str, str, str]:
        x = (hash_int(a, k, self.seed)) & 0xFFFFFFFF
        fi, li = x % len(words.FIRST_NAMES), (x >> 8) % len(words.LAST_NAMES)
        name = f"{words.FIRST_NAMES[fi]} {words.LAST_NAMES[li]}"
        email = "" if (x >> 16) % 12 == 0 else \
            f"{self.first_ascii[fi]}.{self.last_ascii[li]}@{self.domain[a]}"
        title = "" if (x >> 20) % 6 == 0 else _TITLES[(x >> 24) % len(_TITLES)]
        return name, email, title

    def _pick_contact(self, a: int, x: float) -> str:
        cons = self.contacts[a]
        if not cons or x < 0.1:
            return ""
        return f"CON-{a:07d}-{cons[int((x - 0.1) / 0.9 * len(cons))]:03d}"

    def _next(self, kind: str) -> int:
        self.counters[kind] += 1
        return self.counters[kind]

    def _crm_time(self, a: int, t: int) -> int:
        t = max(t, self.crm_t[a] + 1)
        self.crm_t[a] = t
        return t

    def _bill_time(self, a: int, t: int) -> int:
        t = max(t, self.bill_t[a] + 1)
        self.bill_t[a] = t
        return t

    def _p(self, a: int) -> float:
        return 1.0 / (1.0 + math.exp(-float(self.h[a])))

    def _add_months(self, d: int, months: int) -> int:
        dt = self.day0 + timedelta(days=d)
        m = dt.month - 1 + months
        y, m = dt.year + m // 12, m % 12 + 1
        day = min(dt.day, 28 if m == 2 else 30 if m in (4, 6, 9, 11) else 31)
        return (date(y, m, day) - self.day0).days

    # ----- CRM ----------------------------------------------------------------------------
    def _account_row(self, a: int, t: int, deleted: bool = False) -> None:
        t = self._crm_time(a, t)
        fmt = self._fmt(a)
        ind = self.industry[a]
        self._emit(ACC, t, [
            self.aid[a], self.name[a], words.INDUSTRIES[ind] if ind >= 0 else "",
            SEGMENTS[self.seg[a]], REGIONS[self.region[a]], TEAMS[self.team[a]],
            self.owner_emails[self.owner[a]], fmt(self.created_t[a]), fmt(t),
            "true" if deleted else "false",
        ])

    def _contact_row(self, a: int, i: int, t: int, primary: bool, deleted: bool) -> None:
        k = self.contacts[a][i]
        name, email, title = self._person(a, k)
        t = self._crm_time(a, t)
        fmt = self._fmt(a)
        self._emit(CON, t, [
            f"CON-{a:07d}-{k:03d}", self.aid[a], name, email, title,
            "true" if primary else "false", fmt(self.contact_t[a][i]), fmt(t),
            "true" if deleted else "false",
        ])

    def _add_contact(self, a: int, t: int, primary: bool = False) -> None:
        k = self.next_contact[a]
        self.next_contact[a] = k + 1
        t = max(t, self.crm_t[a] + 1)
        self.contacts[a].append(k)
        self.contact_t[a].append(t)
        self.ncon[a] += 1
        if primary:
            self.primary[a] = k
        self._contact_row(a, len(self.contacts[a]) - 1, t, primary, False)

    def _remove_contact(self, a: int, i: int, t: int) -> None:
        k = self.contacts[a][i]
        self._contact_row(a, i, t, False, True)
        del self.contacts[a][i]
        del self.contact_t[a][i]
        self.ncon[a] -= 1
        if self.primary[a] == k:
            self.primary[a] = -1
            self.h[a] -= 0.5  # the champion left
            if self.contacts[a]:
                self.primary[a] = self.contacts[a][0]
                self._contact_row(a, 0, t + 1, True, False)

    def _create(self, a: int) -> None:
        r, d = self.rnd, self.day
        t = d * DAY + r.randrange(8 * 3600, 20 * 3600)
        w1, w2 = r.choice(words.COMPANY_WORDS), r.choice(words.COMPANY_NOUNS)
        self.name[a] = quote(f"{w1} {w2}{r.choice(words.COMPANY_SUFFIXES)}")
        self.domain[a] = f"{_ascii(w1)}-{_ascii(w2)}{a % 1000}.example"
        self.industry[a] = -1 if r.random() < 0.15 else r.randrange(len(words.INDUSTRIES))
        self.owner[a] = r.choice(self.team_owners[self.team[a]])
        self.created_t[a] = t
        self._account_row(a, t)
        seg = self.seg[a]
        lo, hi = CONTACTS0[seg]
        for i in range(r.randint(lo, hi)):
            self._add_contact(a, t + 60 * (i + 1), primary=i == 0)
        # billing: customer, then a subscription (trial or paid)
        reg = self.region[a]
        x, cur = r.random(), REGION_CURRENCY[reg][-1][0]
        for c, w in REGION_CURRENCY[reg]:
            if x < w:
                cur = c
                break
            x -= w
        self.currency[a] = cur
        self.card[a] = seg != ENT or r.random() < 0.2
        self.bill_email[a] = "" if r.random() < 0.05 else \
            f"{r.choice(('billing', 'ap', 'finance', 'accounts'))}@{self.domain[a]}"
        tc = t + 600 + r.randrange(600)
        self.cus_t[a] = tc
        self._customer_row(a, tc)
        if self.invoice_only[a]:
            self.card[a] = True
            self.buying[a], self.eng[a] = True, ORDER_ENGAGEMENT
            self._order(tc + 60 + r.randrange(600), a)
            return
        self._start_subscription(a, tc + 60 + r.randrange(600), first=True)
        self.eng[a] = 1.0

    def _activities(self, counts: np.ndarray, outbound: bool) -> None:
        idx = np.flatnonzero(counts)
        if not idx.size:
            return
        acc = np.repeat(idx, counts[idx])
        m, rng = acc.size, self.rng
        local = rng.triangular(7.5 * 3600, 11 * 3600, 19 * 3600, m).astype(np.int64)
        sec = ((local - self.local_off[acc]) % DAY).tolist()  # second of the UTC day
        types = np.searchsorted(_OUT_CUM if outbound else _IN_CUM, rng.random(m)).tolist()
        xs = rng.random((4, m)).tolist()
        lag = rng.integers(0, 1800, m).tolist()
        direction = "outbound" if outbound else "inbound"
        buf, aid, owner, emails = self.buf[ACT], self.aid, self.owner, self.owner_emails
        created, z, contacts = self.created_t, self.clock.z, self.contacts
        region, off_fmts = self.region, self.off_fmts
        base, ds, hmsz = self.day * DAY, self.clock.date(self.day), self.clock.hmsz
        n0 = self.counters["act"]
        self.counters["act"] = n0 + m
        for j, (a, s, ty, xc, xs_, xst, xl, lg) in enumerate(
            zip(acc.tolist(), sec, types, xs[0], xs[1], xs[2], xs[3], lag, strict=True)
        ):
            cons = contacts[a]
            cid = f"CON-{a:07d}-{cons[int((xc - 0.1) / 0.9 * len(cons))]:03d}" \
                if cons and xc >= 0.1 else ""
            subjects = _SUBJECTS_Q[ty]
            sj = int(xs_ * 997) % len(subjects)
            who = "" if (not outbound and xs_ < 0.1) else emails[owner[a]]
            if xst >= OFFSET_SHARE and xl >= 0.03 and s + lg < DAY and xst <= 0.995:
                # the common case: UTC, logged the same day, never edited
                buf.append([f"act_{n0 + j + 1:010d}", aid[a], cid, ACTIVITY_TYPES[ty],
                            direction, ds + hmsz[s], who, subjects[sj], ds + hmsz[s + lg]])
                continue
            t = base + s
            occ = t
            if xl < 0.03:  # logged late: occurred 1-3 days before it was entered
                occ = max(t - DAY * (1 + int(xl * 100)), created[a] + 1)
            upd = t + lg
            fmt = z if xst >= OFFSET_SHARE else off_fmts[region[a]][int(xst * 1000) % 2]
            row = [f"act_{n0 + j + 1:010d}", aid[a], cid, ACTIVITY_TYPES[ty], direction,
                   fmt(occ), who, subjects[sj], fmt(upd)]
            self._emit(ACT, upd, row)
            if xst > 0.995:  # corrected later: a second version of the same activity
                later = upd + 3600 + int((xst - 0.995) * 2e7)
                raw = _SUBJECTS[ty][sj]
                self._emit(ACT, later, row[:7] + [quote(raw + " (edited)"), z(later)])

    def _ticket(self, a: int, p: float) -> None:
        r, bad = self.rnd, 1.0 - p
        t0 = self.day * DAY + r.randrange(DAY)
        x = r.random()
        pu = 0.02 + 0.25 * bad * bad
        ph = pu + 0.10 + 0.25 * bad
        pri = "urgent" if x < pu else "high" if x < ph else "normal" if x < ph + 0.5 else "low"
        tid, aid = f"tkt_{self._next('tkt'):09d}", self.aid[a]
        cid = self._pick_contact(a, r.random())
        fmt = self._fmt(a)
        o = fmt(t0)
        self._emit(TKT, t0, [tid, aid, cid, pri, "open", o, "", "", "", o])
        resp = t0 + 60 + int(r.expovariate(1.0 / RESP_MEAN[pri]) * (0.5 + 1.5 * bad))
        f1 = fmt(resp)
        if r.random() < 0.15:  # solved with the first answer
            solve = resp
        else:
            self._emit(TKT, resp, [tid, aid, cid, pri, "pending", o, f1, "", "", f1])
            solve = resp + 60 + int(r.expovariate(1.0 / SOLVE_MEAN[pri]) * (0.6 + 1.5 * bad))
        fs = fmt(solve)
        csat = ""
        if r.random() < 0.5:
            s = round(1 + 4 * p + r.gauss(0, 0.7) - (0.6 if pri == "urgent" else 0.0))
            csat = str(min(5, max(1, s)))
        self._emit(TKT, solve, [tid, aid, cid, pri, "solved", o, f1, fs, csat, fs])
        closed = solve + 3 * DAY + r.randrange(4 * DAY)
        self._emit(TKT, closed, [tid, aid, cid, pri, "closed", o, f1, fs, csat, fmt(closed)])

    def _nps(self, a: int, p: float) -> None:
        r = self.rnd
        t = self.day * DAY + (r.randrange(8 * 3600, 22 * 3600) - REGION_LOCAL[self.region[a]]) \
            % DAY
        score = min(10, max(0, round(1.0 + 9.5 * p + r.gauss(0, 1.5))))
        comment = ""
        if r.random() < 0.4:
            bucket = "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"
            comment = r.choice(_COMMENTS[bucket])
        self._emit(NPS, t, [
            f"nps_{self._next('nps'):09d}", self.aid[a],
            self._pick_contact(a, 0.1 + 0.9 * r.random()) if r.random() > 0.05 else "",
            str(score), self._fmt(a)(t), comment,
        ])

    def _rare(self, a: int, u: float, p: float, d: int, r: random.Random) -> None:
        """One rare event with its own probability; u is uniform on [0, RARE_UPPER)."""
        t = d * DAY + r.randrange(7 * 3600, 21 * 3600)
        live = self.live[a] > 0
        seg = self.seg[a]
        for prob, event in (
            (1 / 70 if live else 0.0, "seats"),
            (CONTACT_ADD[seg] * (1.0 if live else 0.1), "contact_add"),
            (0.0015 if self.ncon[a] > 1 else 0.0, "contact_leave"),
            (1 / 1500, "owner"),
            (1 / 3000, "team"),
            (1 / 60 if self.industry[a] < 0 else 0.0, "industry"),
            (1 / 400 if live and self.nf[a] > 0 else 0.0, "neglect"),
            (1 / 2000 if live else 0.0, "bill_email"),
            (1 / 3000 if self.lapsed[a] and d - self.churn_day[a] > 90 else 0.0, "delete"),
            (p * p / 400 if self.lapsed[a] and d - self.churn_day[a] > 60 else 0.0, "return"),
        ):
            if u < prob:
                getattr(self, "_ev_" + event)(a, t, p, r)
                return
            u -= prob

    def _ev_contact_add(self, a: int, t: int, p: float, r: random.Random) -> None:
        self._add_contact(a, t, primary=self.primary[a] < 0)

    def _ev_contact_leave(self, a: int, t: int, p: float, r: random.Random) -> None:
        self._remove_contact(a, r.randrange(len(self.contacts[a])), t)

    def _ev_owner(self, a: int, t: int, p: float, r: random.Random) -> None:
        self.owner[a] = r.choice(self.team_owners[self.team[a]])
        self._account_row(a, t)

    def _ev_team(self, a: int, t: int, p: float, r: random.Random) -> None:
        self.team[a] = (self.team[a] + r.randrange(1, len(TEAMS))) % len(TEAMS)
        self.owner[a] = r.choice(self.team_owners[self.team[a]])
        self._account_row(a, t)

    def _ev_industry(self, a: int, t: int, p: float, r: random.Random) -> None:
        self.industry[a] = r.randrange(len(words.INDUSTRIES))
        self._account_row(a, t)

    def _ev_neglect(self, a: int, t: int, p: float, r: random.Random) -> None:
        self.nf[a] = 0.0
        until = t + DAY * (45 + int(r.expovariate(1 / 100)))
        self._at(until, self._neglect_end, a)

    def _neglect_end(self, t: int, a: int) -> None:
        self.nf[a] = 1.0

    def _ev_bill_email(self, a: int, t: int, p: float, r: random.Random) -> None:
        self.bill_email[a] = f"invoices@{self.domain[a]}" if r.random() < 0.5 else ""
        self._customer_row(a, t)

    def _ev_delete(self, a: int, t: int, p: float, r: random.Random) -> None:
        self._account_row(a, t, deleted=True)
        self.primary[a] = -1
        while self.contacts[a]:
            self._remove_contact(a, len(self.contacts[a]) - 1, t)
        self.eng[a] = 0.0
        self.lapsed[a] = False
        self.h[a] = self.mu[a]

    def _ev_return(self, a: int, t: int, p: float, r: random.Random) -> None:
        self.h[a] = self.mu[a] + 0.8  # a returning customer starts on good terms
        self._start_subscription(a, t, first=False)

    def _ev_seats(self, a: int, t: int, p: float, r: random.Random) -> None:
        if self.status[a] != ACTIVE:
            return
        up = r.random() < 0.2 + 0.6 * p
        q = self.qty[a]
        delta = max(1, int(q * r.uniform(0.05, 0.3)))
        self.qty[a] = q + delta if up else max(1, q - delta)
        plan = self.plan[a]
        if not up and p < 0.35 and plan > 0 and r.random() < 0.25:
            self.plan[a] = plan - 1  # downgrade
        elif up and p > 0.75 and plan < 2 and r.random() < 0.05:
            self.plan[a] = plan + 1  # upgrade
        self.price[a] = self._seat_price(self.plan[a], self.currency[a])
        self._sub_row(a, t)

    # ----- billing ------------------------------------------------------------------------
    def _seat_price(self, plan: int, cur: int) -> int:
        return int(round(SEAT_USD_CENTS[plan] * FX[cur] / 100.0)) * 100

    def _customer_row(self, a: int, t: int) -> None:
        t = self._bill_time(a, t)
        fmt = self._fmt(a)
        self._emit(CUS, t, [f"cus_{a:07d}", self.aid[a], self.bill_email[a],
                            CURRENCIES[self.currency[a]], fmt(self.cus_t[a]), fmt(t)])

    def _sub_id(self, a: int) -> str:
        return f"sub_{a:07d}_{self.sub_no[a]}"

    def _mrr(self, a: int) -> int:
        c = self.qty[a] * self.price[a]
        return c if self.interval[a] == 0 else c * YEARLY_DISCOUNT // 100

    def _sub_row(self, a: int, t: int) -> int:
        t = self._bill_time(a, t)
        fmt = self._fmt(a)
        iv = self.interval[a]
        st = self.status[a]
        self._emit(SUB, t, [
            self._sub_id(a), f"cus_{a:07d}", f"{PLANS[self.plan[a]]}-{('monthly', 'yearly')[iv]}",
            ("month", "year")[iv], str(self.qty[a]), _money(self._mrr(a)),
            CURRENCIES[self.currency[a]], STATUSES[st], fmt(self.started_t[a]),
            self.clock.date(self.term_date[a]),
            fmt(self.canceled_t[a]) if st == CANCELED else "", fmt(t),
        ])
        return t

    def _start_subscription(self, a: int, t: int, first: bool) -> None:
        r, seg = self.rnd, self.seg[a]
        self.sub_no[a] += 1
        plan = SEG_PLAN[seg] if first or r.random() < 0.7 else max(0, SEG_PLAN[seg] - 1)
        self.plan[a] = plan
        self.interval[a] = 1 if r.random() < YEARLY_P[seg] else 0
        q = SEATS_MEDIAN[seg] * math.exp(r.gauss(0, 0.6)) * (1.0 if first else 0.7)
        self.qty[a] = max(1, int(q))
        self.price[a] = self._seat_price(plan, self.currency[a])
        self.started_t[a] = t
        trial = r.random() < (TRIAL_P[seg] if first else 0.15)
        d = t // DAY
        self.status[a] = TRIALING if trial else ACTIVE
        self.term_date[a] = d + 14 if trial else self._add_months(d, 12 if self.interval[a] else 1)
        self.term_end[a] = self.term_date[a]
        self.live[a], self.eng[a], self.lapsed[a] = 1.0, 1.0, False
        t = self._sub_row(a, t)
        if not trial:
            self._invoice(a, t + 60)

    def _order(self, t: int, a: int) -> None:
        """An invoice-only account's order: invoiced and paid by card at once; then, by its
        hidden health, it drops out for good (BG/NBD's story: silence, never a cancellation)
        or orders again after an exponential gap."""
        if not self.buying[a]:
            return
        r = self.rnd
        p = self._p(a)
        amount = int(round(ORDER_USD_CENTS * FX[self.currency[a]] / 100.0
                           * math.exp(r.gauss(0, 0.5)))) * 100
        iid = f"in_{self._next('inv'):09d}"
        inv = (iid, a, "", amount, t, t)
        self._inv_row(inv, t, t, "open", t, 0, 0)
        paid_t = t + r.randrange(60, 3600)
        fmt, cur = self._fmt(a), CURRENCIES[self.currency[a]]
        self._emit(PAY, paid_t, [f"py_{self._next('pay'):09d}", iid, f"cus_{a:07d}",
                                 _money(amount), cur, "succeeded", fmt(paid_t), "",
                                 fmt(paid_t)])
        self._inv_row(inv, t, t, "paid", paid_t + 1, amount, paid_t)
        if r.random() < ORDER_DROPOUT_BASE + ORDER_DROPOUT_ILL * (1.0 - p) ** 2:
            self.buying[a], self.eng[a] = False, 0.04
            return
        gap_days = r.expovariate((ORDER_RATE_BASE + ORDER_RATE_HEALTH * p) / 30.0)
        self._at(paid_t + DAY + int(gap_days * DAY), self._order, a)

    def _cancel(self, a: int, t: int) -> None:
        self.status[a] = CANCELED
        self.canceled_t[a] = t = self._bill_time(a, t)
        self.bill_t[a] = t - 1
        self._sub_row(a, t)
        self.term_end[a] = -1
        self.live[a], self.eng[a], self.lapsed[a] = 0.0, 0.04, True
        self.churn_day[a] = t // DAY

    def _renew(self, a: int, p: float) -> None:
        r = self.rnd
        t = self.day * DAY + r.randrange(600, 4 * 3600)
        st, yearly = self.status[a], self.interval[a] == 1
        if st == TRIALING:
            if r.random() >= 0.35 + 0.55 * p:
                self._cancel(a, t)  # the trial lapsed
                return
            self.status[a] = ACTIVE
        elif st in (ACTIVE, PAST_DUE):
            bad = 1.0 - p
            churn = (0.02 + 0.9 * bad ** 3) if yearly else (0.003 + 0.25 * bad ** 3)
            if r.random() < churn:
                self._cancel(a, t)
                return
        else:
            return  # unpaid: the dunning process decides
        self.term_date[a] = self._add_months(self.day, 12 if yearly else 1)
        self.term_end[a] = self.term_date[a]
        t = self._sub_row(a, t)
        self._invoice(a, t + 60)

    def _invoice(self, a: int, t: int, reissue: bool = False) -> None:
        r = self.rnd
        iid = f"in_{self._next('inv'):09d}"
        amount = self._mrr(a) * (12 if self.interval[a] else 1)
        inv = (iid, a, self._sub_id(a), amount)
        card = self.card[a]
        if not card:  # invoiced on terms: a draft first, finalised an hour later
            self._inv_row(inv, t, t + 3600, "draft", t, 0, 0)
            t += 3600
        due = t if card else t + 30 * DAY
        inv = inv + (t, due)
        self._inv_row(inv, t, due, "open", t, 0, 0)
        self.unpaid.add(iid)
        if not reissue and r.random() < 0.01:  # a billing mistake: voided and reissued
            self._inv_row(inv, t, due, "void", t + 1800, 0, 0)
            self.unpaid.discard(iid)
            self._invoice(a, t + 3600, reissue=True)
            return
        if card:
            self._at(t + r.randrange(60, 3600), self._pay, inv, 1)
        else:
            bad = 1.0 - self._p(a)
            delay = int(max(1.0, r.gauss(16 + 30 * bad, 8)) * DAY)
            if delay > 30 * DAY:
                self._at(due + DAY + r.randrange(3600), self._overdue, inv)
            self._at(t + delay, self._pay, inv, 1)

    def _inv_row(self, inv: tuple, issued: int, due: int, status: str, t: int,
                 paid: int, paid_t: int) -> None:
        iid, a, sub, amount = inv[:4]
        fmt = self._fmt(a)
        self._emit(INV, t, [
            iid, f"cus_{a:07d}", sub, fmt(issued), fmt(due), _money(amount), _money(paid),
            CURRENCIES[self.currency[a]], status, fmt(paid_t) if paid_t else "", fmt(t),
        ])

    def _overdue(self, t: int, inv: tuple) -> None:
        iid, a, sub = inv[:3]
        if iid in self.unpaid and sub == self._sub_id(a) and self.status[a] == ACTIVE:
            self.status[a] = PAST_DUE
            self._sub_row(a, t)

    def _pay(self, t: int, inv: tuple, attempt: int) -> None:
        iid, a, sub, amount, issued, due = inv
        r = self.rnd
        current = sub == self._sub_id(a) and self.status[a] != CANCELED
        if not current:  # the subscription ended before the invoice was paid
            self._inv_row(inv, issued, due, "void", t, 0, 0)
            self.unpaid.discard(iid)
            return
        p = self._p(a)
        # a retry fails far more often than a first attempt (expired cards stay expired)
        pf = 0.01 + 0.3 * (1.0 - p) ** 2 if attempt == 1 else 0.3 + 0.5 * (1.0 - p)
        fail = self.card[a] and r.random() < pf
        pid = f"py_{self._next('pay'):09d}"
        fmt, cur = self._fmt(a), CURRENCIES[self.currency[a]]
        row = [pid, iid, f"cus_{a:07d}", _money(amount), cur, "failed" if fail else "succeeded",
               fmt(t), r.choice(FAILURE_CODES) if fail else "", fmt(t)]
        self._emit(PAY, t, row)
        if not fail:
            self._inv_row(inv, issued, due, "paid", t + 1, amount, t)
            self.unpaid.discard(iid)
            if self.status[a] in (PAST_DUE, UNPAID):
                self.status[a] = ACTIVE
                self._sub_row(a, t + 2)
            if r.random() < 0.006:  # refunded later (a complaint, a duplicate charge)
                later = t + DAY * r.randint(1, 20)
                self._emit(PAY, later, row[:5] + ["refunded", row[6], "", self.clock.z(later)])
            return
        if self.status[a] == ACTIVE:
            self.status[a] = PAST_DUE
            self._sub_row(a, t + 2)
        if attempt < 4:
            self._at(t + DAY * (3, 2, 2)[attempt - 1] + r.randrange(3600), self._pay, inv,
                     attempt + 1)
            return
        self._inv_row(inv, issued, due, "uncollectible", t + 1, 0, 0)
        self.unpaid.discard(iid)
        self.status[a] = UNPAID
        self._sub_row(a, t + 3)
        self._at(t + DAY * r.randint(5, 10), self._cancel_unpaid, sub)

    def _cancel_unpaid(self, t: int, sub: str) -> None:
        a = int(sub[4:11])
        if sub == self._sub_id(a) and self.status[a] == UNPAID:
            self._cancel(a, t)  # involuntary churn


def hash_int(a: int, k: int, seed: int) -> int:
    """A cheap, stable integer hash (Python's hash() of ints is stable, but be explicit)."""
    x = (a * 0x9E3779B1 + k * 0x85EBCA77 + seed * 0xC2B2AE3D) & 0xFFFFFFFFFFFF
    x ^= x >> 17
    x = (x * 0xED5AD4BB) & 0xFFFFFFFFFFFF
    return x ^ (x >> 11)


_OUT_CUM = _cum(OUT_TYPES)
_IN_CUM = _cum(IN_TYPES)
_SUBJECTS = tuple(words.SUBJECTS[t] for t in ACTIVITY_TYPES)
_SUBJECTS_Q = tuple(tuple(quote(x) for x in s) for s in _SUBJECTS)
_TITLES = tuple(quote(x) for x in words.TITLES)
_COMMENTS = {k: tuple(quote(x) for x in v) for k, v in words.NPS_COMMENTS.items()}
