"""Ordinary lives: the records councils hold about the population, before any fraud.

One record frame for every data set, built per data set with vectorised rules
(who is a tenant, who claims what, when it started and ended). Deaths end
everything at the date of death (badges and passes only once the death is notified, which
takes a few weeks); people who moved between boroughs leave an
ended registration (and, for tenants, an ended tenancy) in their former borough.
Record columns: dataset, council_idx (-1 = central), person_id, address_id,
period_start, period_end, discount, amount, last_used, date_of_death, origin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthetic.dates import NAT, age_on, days, uniform_days, years
from synthetic.population import Population

CENTRAL_IDX = -1
#: Categorical levels (comparisons on codes, not strings, keep the 1M-row steps fast).
DATASET_LEVELS = ("council_tax", "electoral_register", "tenancy", "waiting_list", "payroll", "blue_badge",
                  "concessionary_travel", "council_tax_reduction", "deceased")
ORIGIN_LEVELS = ("base", "former_home", "fraud", "near_miss", "organic")
#: Deaths this recent are not yet processed by badge and pass teams (their records still run on):
#: a real source of matches that are true by the rule but were never planted.
NOTIFICATION_LAG_DAYS = 21
RECORD_COLUMNS = ("dataset", "council_idx", "person_id", "address_id", "period_start", "period_end",
                  "discount", "amount", "last_used", "date_of_death", "origin")


def record_frame(dataset: str, council_idx, person_id, address_id, start, end, *, discount=None,
                 amount=None, last_used=None, date_of_death=None, origin: str = "base") -> pd.DataFrame:
    n = len(person_id)
    nat = np.full(n, NAT)
    return pd.DataFrame({
        "dataset": pd.Categorical.from_codes(np.full(n, DATASET_LEVELS.index(dataset)), categories=DATASET_LEVELS),
        "council_idx": np.broadcast_to(np.asarray(council_idx, np.int64), (n,)).copy(),
        "person_id": np.asarray(person_id, np.int64),
        "address_id": np.broadcast_to(np.asarray(address_id, np.int64), (n,)).copy(),
        "period_start": np.asarray(start, "datetime64[D]") if start is not None else nat,
        "period_end": np.asarray(end, "datetime64[D]") if end is not None else nat,
        "discount": pd.array(discount if discount is not None else [pd.NA] * n, dtype="boolean"),
        "amount": np.asarray(amount, float) if amount is not None else np.full(n, np.nan),
        "last_used": np.asarray(last_used, "datetime64[D]") if last_used is not None else nat,
        "date_of_death": np.asarray(date_of_death, "datetime64[D]") if date_of_death is not None else nat,
        "origin": pd.Categorical.from_codes(np.full(n, ORIGIN_LEVELS.index(origin)), categories=ORIGIN_LEVELS),
    })


def _end_at_death(start: np.ndarray, end: np.ndarray, dod: np.ndarray,
                  notified_by: np.datetime64 | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ends every period at the date of death (only deaths on or before ``notified_by``, when given);
    returns (end, keep) where keep drops periods starting after the death."""
    dead = ~np.isnat(dod)
    keep = ~dead | (start < dod)
    notified = dead if notified_by is None else dead & (dod <= notified_by)
    end = np.where(notified & (np.isnat(end) | (end > dod)), dod, end)
    return end, keep


def build_life(rng: np.random.Generator, pop: Population, E: np.datetime64) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Base records of every data set, and the movers table (person_id, prev council/address/period)."""
    pp, hh = pop.people, pop.households
    n = len(pp)
    pid = pp["person_id"].to_numpy()
    hid = pp["household_id"].to_numpy()
    member = pp["member"].to_numpy()
    council = pp["council_idx"].to_numpy()
    address = pp["address_id"].to_numpy()
    dob = pp["dob"].to_numpy().astype("datetime64[D]")
    dod = pp["date_of_death"].to_numpy().astype("datetime64[D]")
    move_in = pp["move_in"].to_numpy().astype("datetime64[D]")
    alive_end = np.where(np.isnat(dod), E, dod)           # last day anything can start
    age = age_on(dob, E)
    n_adults = hh["n_adults"].to_numpy()[hid]
    tenant_hh = hh["council_tenant"].to_numpy()[hid]
    lead = member == 0
    frames: list[pd.DataFrame] = []

    notified_by = E - days(NOTIFICATION_LAG_DAYS)

    def add(dataset: str, idx: np.ndarray, start: np.ndarray, end: np.ndarray, *, council_idx: np.ndarray | None = None,
            origin: str = "base", **kw: np.ndarray) -> None:
        """Records for people ``idx`` (at their home council and address unless given), ended at death."""
        lag = notified_by if dataset in ("blue_badge", "concessionary_travel") else None
        end, keep = _end_at_death(start, end, dod[idx], lag)
        where = council[idx] if council_idx is None else council_idx
        extra = {k: v[keep] for k, v in kw.items()}
        frames.append(record_frame(dataset, where[keep], pid[idx][keep], address[idx][keep], start[keep], end[keep],
                                   origin=origin, **extra))

    # council tax: one account per household, liable = first member
    idx = np.flatnonzero(lead)
    band_amount = rng.choice([1250.0, 1460.0, 1670.0, 1880.0, 2290.0, 2710.0, 3130.0], size=len(idx))
    discount = n_adults[idx] == 1
    add("council_tax", idx, move_in[idx], np.full(len(idx), NAT), discount=discount,
        amount=np.where(discount, band_amount * 0.75, band_amount))

    # electoral register: most adults, registered within weeks of moving in
    idx = np.flatnonzero(rng.random(n) < 0.92)
    start = np.minimum(move_in[idx] + days(rng.integers(0, 60, len(idx))), alive_end[idx] - days(1))
    add("electoral_register", idx, start, np.full(len(idx), NAT))

    # tenancy: the lead of a council-tenant household
    idx = np.flatnonzero(lead & tenant_hh)
    add("tenancy", idx, move_in[idx], np.full(len(idx), NAT))

    # waiting list: some non-tenants, a quarter since housed elsewhere or removed
    idx = np.flatnonzero(~tenant_hh & (rng.random(n) < 0.05))
    start = uniform_days(rng, move_in[idx], alive_end[idx] - days(10))
    end = np.where(rng.random(len(idx)) < 0.25, start + days(rng.integers(30, 700, len(idx))), NAT)
    end = np.where(end >= E, NAT, end)
    add("waiting_list", idx, start, end)

    # payroll: working age; most work for their own council
    working = (age >= 18.5) & (age < 67)
    idx = np.flatnonzero(working & (rng.random(n) < 0.05))
    n_c = int(council.max()) + 1 if n else 1
    other = (council[idx] + rng.integers(1, max(n_c, 2), len(idx))) % max(n_c, 1)
    employer = np.where(rng.random(len(idx)) < 0.75, council[idx], other)
    start = uniform_days(rng, np.maximum(dob[idx] + years(18.2), E - years(15)), alive_end[idx] - days(10))
    end = np.where(rng.random(len(idx)) < 0.25, start + days(rng.integers(60, 3000, len(idx))), NAT)
    end = np.where(end >= E, NAT, end)
    salary = np.round(rng.uniform(21_000, 68_000, len(idx)), 2)
    add("payroll", idx, start, end, council_idx=employer, amount=salary)
    on_payroll = np.zeros(n, bool)
    on_payroll[idx] = True
    # organic: a few staff have a declared second job at another council, and a few low-paid
    # staff receive council tax reduction (both true matches by rule, neither planted)
    if n_c >= 2:
        live = (np.isnat(end) & (start < E - days(90)))
        second = np.flatnonzero(live & (rng.random(len(idx)) < 0.004))
        other2 = (employer[second] + rng.integers(1, n_c, len(second))) % n_c
        s2 = uniform_days(rng, start[second] + days(30), np.full(len(second), E - days(30)))
        add("payroll", idx[second], s2, np.full(len(second), NAT), council_idx=other2,
            amount=np.round(rng.uniform(8_000, 15_000, len(second)), 2), origin="organic")
    low_paid = np.flatnonzero(np.isnat(end) & (salary < 24_000) & (rng.random(len(idx)) < 0.05))
    s3 = uniform_days(rng, np.maximum(start[low_paid], move_in[idx[low_paid]]), np.full(len(low_paid), E - days(30)))
    add("council_tax_reduction", idx[low_paid], s3, np.full(len(low_paid), NAT),
        amount=np.round(rng.uniform(3, 12, len(low_paid)), 2), origin="organic")

    # blue badges: more common with age; three years each; some long expired
    p_badge = np.select([age < 60, age < 75], [0.015, 0.06], 0.13)
    idx = np.flatnonzero(rng.random(n) < p_badge)
    expired = rng.random(len(idx)) < 0.2
    lo = np.maximum(dob[idx] + years(18), np.where(expired, E - years(7), E - years(3)))
    hi = np.where(expired, E - years(3) - days(1), alive_end[idx] - days(10))
    hi = np.minimum(hi, alive_end[idx] - days(10))
    start = uniform_days(rng, lo, hi)
    add("blue_badge", idx, start, start + years(3))
    has_badge = np.zeros(n, bool)
    has_badge[idx] = True

    # concessionary travel (Freedom Pass): older people, and some disabled badge holders
    eligible = (age >= 66) | (has_badge & (rng.random(n) < 0.5))
    idx = np.flatnonzero(eligible & (rng.random(n) < 0.85))
    lo = np.maximum(np.maximum(dob[idx] + years(np.where(age[idx] >= 66, 66, 18)), move_in[idx]), E - years(10))
    start = uniform_days(rng, lo, alive_end[idx] - days(10))
    end = np.where(rng.random(len(idx)) < 0.5, NAT, start + years(5))
    end = np.where(~np.isnat(end) & (end < E), NAT, end)           # renewed: shown as ongoing
    end_d, _ = _end_at_death(start, end, dod[idx], notified_by)
    last_hi = np.minimum(np.where(np.isnat(end_d), E, end_d), alive_end[idx])
    last_used = np.where(rng.random(len(idx)) < 0.9, uniform_days(rng, np.maximum(start, last_hi - days(90)), last_hi), NAT)
    add("concessionary_travel", idx, start, end, last_used=last_used)

    # council tax reduction: household leads on low income (not council employees)
    idx = np.flatnonzero(lead & ~on_payroll & (rng.random(n) < 0.16))
    start = uniform_days(rng, move_in[idx], alive_end[idx] - days(10))
    end = np.where(rng.random(len(idx)) < 0.3, start + days(rng.integers(90, 1500, len(idx))), NAT)
    end = np.where(end >= E, NAT, end)
    add("council_tax_reduction", idx, start, end, amount=np.round(rng.uniform(5, 30, len(idx)), 2))

    # central deceased feed
    idx = np.flatnonzero(~np.isnat(dod))
    frames.append(record_frame("deceased", CENTRAL_IDX, pid[idx], address[idx], None, None, date_of_death=dod[idx]))

    # movers: household leads who came from another borough (ended registration there)
    movers = _movers(rng, pop, E, tenant_hh, lead, n_c)
    if len(movers):
        m = movers
        frames.append(record_frame("electoral_register", m["prev_council_idx"], m["person_id"], m["prev_address_id"],
                                   m["prev_start"], m["prev_end"], origin="former_home"))
        frames.append(record_frame("council_tax", m["prev_council_idx"], m["person_id"], m["prev_address_id"],
                                   m["prev_start"], m["prev_end"], discount=np.zeros(len(m), bool),
                                   amount=np.full(len(m), 1460.0), origin="former_home"))
        t = m[m["prev_tenant"]]
        frames.append(record_frame("tenancy", t["prev_council_idx"], t["person_id"], t["prev_address_id"],
                                   t["prev_start"], t["prev_end"], origin="former_home"))
    return pd.concat(frames, ignore_index=True), movers


def _movers(rng: np.random.Generator, pop: Population, E: np.datetime64, tenant_hh: np.ndarray,
            lead: np.ndarray, n_councils: int) -> pd.DataFrame:
    pp = pop.people
    cols = ["person_id", "prev_council_idx", "prev_address_id", "prev_start", "prev_end", "prev_tenant"]
    if n_councils < 2:
        return pd.DataFrame(columns=cols)
    move_in = pp["move_in"].to_numpy().astype("datetime64[D]")
    dob = pp["dob"].to_numpy().astype("datetime64[D]")
    recent = move_in >= E - years(15)
    p = np.where(tenant_hh, 0.10, 0.04)
    chosen = lead & recent & (rng.random(len(pp)) < p)
    # at least a few tenant movers so the legitimate-mover near miss exists at any size
    tenant_pool = np.flatnonzero(lead & recent & tenant_hh & (move_in - dob > years(22)))
    force = rng.permutation(tenant_pool)[:6]
    chosen[force] = True
    idx = np.flatnonzero(chosen & (move_in - dob > years(20)))
    council = pp["council_idx"].to_numpy()[idx]
    prev_council = (council + rng.integers(1, n_councils, len(idx))) % n_councils
    prev_end = move_in[idx] - days(rng.integers(1, 120, len(idx)))
    prev_start = np.maximum(dob[idx] + years(18), prev_end - days(rng.integers(365, 8 * 365, len(idx))))
    ok = prev_start < prev_end - days(60)
    idx, prev_council, prev_start, prev_end = idx[ok], prev_council[ok], prev_start[ok], prev_end[ok]
    return pd.DataFrame({
        "person_id": idx, "prev_council_idx": prev_council, "prev_address_id": pop.take_spare(prev_council),
        "prev_start": prev_start, "prev_end": prev_end,
        "prev_tenant": tenant_hh[idx] & (rng.random(len(idx)) < 0.7),
    })
