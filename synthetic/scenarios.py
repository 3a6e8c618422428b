"""Planted fraud and near-misses for every match type.

Fraud is planted at low, realistic rates (with a floor so even a small run has a
few of each); near-misses are pairs that look alike but must not be flagged: a
legitimate mover, a namesake born the same year, twins, a badge or pass cancelled
in time, a former occupant who left before the discount began, and hard negatives that
share almost everything: twins (same surname, date of birth and address, different
forename) and namesakes (same forename and surname, different date of birth) against a
deceased person's record and against council tax reduction / payroll. Each scenario names
its two records (by row key until record ids exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from councilmatch import matchtype_ids as mt
from synthetic.dates import NAT, days, uniform_days, years
from synthetic.life import record_frame
from synthetic.population import Population

FRAUD_RATE = {
    mt.TENANCY_TWO_BOROUGHS: 0.005, mt.WAITING_LIST_TENANCY: 0.004, mt.SPD_OTHER_ADULT: 0.01,
    mt.PAYROLL_TWO_COUNCILS: 0.006, mt.BLUE_BADGE_DECEASED: 0.006, mt.CONCESSIONARY_TRAVEL_DECEASED: 0.004,
    mt.CTR_PAYROLL: 0.008,
}
MIN_FRAUD = 4
MIN_NEAR_MISS = 3
NEAR_MISS_RATE = 0.003


@dataclass
class Planter:
    rng: np.random.Generator
    pop: Population
    records: pd.DataFrame
    E: np.datetime64
    n_councils: int
    movers: pd.DataFrame
    scenarios: list[dict] = field(default_factory=list)
    #: twins and namesakes planted as hard negatives (per relevant record; at least MIN_NEAR_MISS each)
    hard_negative_rate: float = NEAR_MISS_RATE

    def __post_init__(self) -> None:
        pp = self.pop.people
        self.used = np.zeros(len(pp), bool)
        self.used[self.movers["person_id"].to_numpy(dtype=np.int64)] = True       # movers keep their own story
        self.dob = pp["dob"].to_numpy().astype("datetime64[D]")
        self.dod = pp["date_of_death"].to_numpy().astype("datetime64[D]")
        self.council = pp["council_idx"].to_numpy()
        self.address = pp["address_id"].to_numpy()
        self.move_in = pp["move_in"].to_numpy().astype("datetime64[D]")

    # -- helpers ---------------------------------------------------------------------------
    def append(self, frame: pd.DataFrame) -> np.ndarray:
        start = len(self.records)
        self.records = pd.concat([self.records, frame], ignore_index=True)
        return np.arange(start, start + len(frame))

    def rows(self, dataset: str, *, ongoing: bool = False, alive: bool | None = None, origin: str = "base") -> np.ndarray:
        r = self.records
        m = (r["dataset"] == dataset).to_numpy() & (r["origin"] == origin).to_numpy()
        if ongoing:
            m &= r["period_end"].isna().to_numpy() & (r["period_start"].to_numpy() < self.E - days(60))
        if alive is not None:
            m &= np.isnat(self.dod[r["person_id"].to_numpy()]) == alive
        return np.flatnonzero(m)

    def pick(self, rows: np.ndarray, k: int) -> np.ndarray:
        """Up to k of ``rows`` (row keys) whose people are not yet in a scenario; marks them used."""
        pid = self.records["person_id"].to_numpy()
        rows = self.rng.permutation(rows)
        rows = rows[~self.used[pid[rows]]]
        _, first = np.unique(pid[rows], return_index=True)       # one row per person
        rows = rows[np.sort(first)][:k]
        self.used[pid[rows]] = True
        return rows

    def pick_people(self, people: np.ndarray, k: int) -> np.ndarray:
        people = self.rng.permutation(people)
        people = people[~self.used[people]][:k]
        self.used[people] = True
        return people

    def other_council(self, council: np.ndarray) -> np.ndarray:
        return (council + self.rng.integers(1, self.n_councils, len(council))) % self.n_councils

    def target(self, match_type: str, relevant: int) -> int:
        return max(MIN_FRAUD, int(round(FRAUD_RATE[match_type] * relevant)))

    def near_target(self, relevant: int) -> int:
        return max(MIN_NEAR_MISS, int(round(NEAR_MISS_RATE * relevant)))

    def scenario(self, match_type: str, kind: str, description: str, left: np.ndarray, right: np.ndarray) -> None:
        for a, b in zip(np.asarray(left), np.asarray(right)):
            self.scenarios.append({"match_type": match_type, "kind": kind, "description": description,
                                   "left_rk": int(a), "right_rk": int(b)})

    def col(self, name: str, rows: np.ndarray) -> np.ndarray:
        v = self.records[name].to_numpy()[rows]
        return v.astype("datetime64[D]") if name.startswith("period") or name in ("last_used", "date_of_death") else v

    # -- the plan --------------------------------------------------------------------------
    def plant_all(self) -> None:
        cross = self.n_councils >= 2
        if cross:
            self.tenancy_two_boroughs()
            self.waiting_list_tenancy()
            self.payroll_two_councils()
            self.namesakes_and_twins()
        self.spd_other_adult()
        self.deceased_frauds()
        self.ctr_payroll()
        self.twins_and_namesakes_as_hard_negatives()

    def tenancy_two_boroughs(self) -> None:
        live = self.rows("tenancy", ongoing=True, alive=True)
        rows = self.pick(live, self.target(mt.TENANCY_TWO_BOROUGHS, len(self.rows("tenancy"))))
        pid, start = self.col("person_id", rows), self.col("period_start", rows)
        other = self.other_council(self.col("council_idx", rows))
        new_start = uniform_days(self.rng, np.maximum(start + days(30), self.E - years(5)), np.full(len(rows), self.E - days(30)))
        new = self.append(record_frame("tenancy", other, pid, self.pop.take_spare(other), new_start, None, origin="fraud"))
        self.scenario(mt.TENANCY_TWO_BOROUGHS, "fraud", "second tenancy taken in another borough while the first is live", rows, new)
        # near miss: legitimate movers (tenancy ended before the next began)
        m = self.movers[self.movers["prev_tenant"]]
        r = self.records
        prev = r[(r["dataset"] == "tenancy") & (r["origin"] == "former_home")]
        cur = r[(r["dataset"] == "tenancy") & (r["origin"] == "base")]
        pair = prev.reset_index().merge(cur.reset_index(), on="person_id", suffixes=("_prev", "_cur"))
        pair = pair[pair["person_id"].isin(m["person_id"])].sort_values("index_prev")
        k = self.near_target(len(cur))
        self.scenario(mt.TENANCY_TWO_BOROUGHS, "near_miss", "moved between boroughs: old tenancy ended before the new one began",
                      pair["index_prev"].to_numpy()[:k], pair["index_cur"].to_numpy()[:k])

    def waiting_list_tenancy(self) -> None:
        live = self.rows("tenancy", ongoing=True, alive=True)
        rows = self.pick(live, self.target(mt.WAITING_LIST_TENANCY, len(self.rows("waiting_list"))))
        pid, start = self.col("person_id", rows), self.col("period_start", rows)
        other = self.other_council(self.col("council_idx", rows))
        wl_start = uniform_days(self.rng, np.maximum(start, self.E - years(3)), np.full(len(rows), self.E - days(30)))
        new = self.append(record_frame("waiting_list", other, pid, self.pop.take_spare(other), wl_start, None, origin="fraud"))
        self.scenario(mt.WAITING_LIST_TENANCY, "fraud", "on another borough's waiting list while holding a tenancy", new, rows)
        # near miss: left another borough's list before the tenancy began
        k = self.near_target(len(live))
        rows = self.pick(live, 3 * k)      # some candidates fail the date checks; keep k
        pid, start = self.col("person_id", rows), self.col("period_start", rows)
        end = start - days(self.rng.integers(10, 300, len(rows)))
        wl_start = np.maximum(end - days(self.rng.integers(200, 1500, len(rows))), self.dob[pid] + years(18))
        ok = np.flatnonzero(wl_start < end - days(30))[:k]
        rows, pid, end, wl_start = rows[ok], pid[ok], end[ok], wl_start[ok]
        other = self.other_council(self.col("council_idx", rows))
        new = self.append(record_frame("waiting_list", other, pid, self.pop.take_spare(other), wl_start, end, origin="near_miss"))
        self.scenario(mt.WAITING_LIST_TENANCY, "near_miss", "left another borough's waiting list before this tenancy began", new, rows)

    def payroll_two_councils(self) -> None:
        live = self.rows("payroll", ongoing=True, alive=True)
        rows = self.pick(live, self.target(mt.PAYROLL_TWO_COUNCILS, len(self.rows("payroll"))))
        pid, start = self.col("person_id", rows), self.col("period_start", rows)
        other = self.other_council(self.col("council_idx", rows))
        new_start = uniform_days(self.rng, np.maximum(start + days(30), self.E - years(4)), np.full(len(rows), self.E - days(30)))
        salary = np.round(self.rng.uniform(21_000, 55_000, len(rows)), 2)
        new = self.append(record_frame("payroll", other, pid, self.address[pid], new_start, None, amount=salary, origin="fraud"))
        self.scenario(mt.PAYROLL_TWO_COUNCILS, "fraud", "employed by two councils at once", rows, new)
        # near miss: left one council's job before joining the other
        k = self.near_target(len(live))
        rows = self.pick(live, 3 * k)
        pid, start = self.col("person_id", rows), self.col("period_start", rows)
        end = start - days(self.rng.integers(5, 100, len(rows)))
        old_start = np.maximum(end - days(self.rng.integers(400, 2000, len(rows))), self.dob[pid] + years(18.2))
        ok = np.flatnonzero(old_start < end - days(60))[:k]
        rows, pid, end, old_start = rows[ok], pid[ok], end[ok], old_start[ok]
        other = self.other_council(self.col("council_idx", rows))
        salary = np.round(self.rng.uniform(21_000, 55_000, len(rows)), 2)
        new = self.append(record_frame("payroll", other, pid, self.address[pid], old_start, end, amount=salary, origin="near_miss"))
        self.scenario(mt.PAYROLL_TWO_COUNCILS, "near_miss", "left one council's payroll before joining another", new, rows)

    def _namesake_pairs(self, dataset: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k pairs of live records in different councils whose people share a birth year (single, not twins)."""
        pp = self.pop.people
        live = self.rows(dataset, ongoing=True, alive=True)
        pid = self.col("person_id", live)
        single = (pp["twin_of"].to_numpy()[pid] < 0) & (self.move_in[pid] - self.dob[pid] > years(19))
        live = self.rng.permutation(live[single & ~self.used[pid]])
        pid = self.col("person_id", live)
        council = self.col("council_idx", live)
        year = self.dob[pid].astype("datetime64[Y]").astype(int)
        waiting: dict[int, int] = {}
        lefts, rights = [], []
        for i in range(len(live)):              # stops after k pairs; bounded by a few hundred steps
            j = waiting.get(year[i])
            if j is not None and council[j] != council[i] and pid[j] != pid[i]:
                lefts.append(live[j]); rights.append(live[i]); del waiting[year[i]]
                if len(lefts) == k:
                    break
            elif j is None:
                waiting[year[i]] = i
        a, b = np.array(lefts, np.int64), np.array(rights, np.int64)
        self.used[self.col("person_id", a)] = True
        self.used[self.col("person_id", b)] = True
        return a, b

    def _copy_name(self, src: np.ndarray, dst: np.ndarray, *, keep_first: bool) -> None:
        pp = self.pop.people
        for c in ("surname",) + (() if keep_first else ("sex", "first_name", "middle_names", "forenames")):
            pp.loc[dst, c] = pp[c].to_numpy()[src]
        pp.loc[dst, "previous_surname"] = None
        pp.loc[dst, "email"] = None
        if keep_first:   # a twin: own first name, no middle name to tell them apart by
            first = pp["first_name"].to_numpy()[dst]
            clash = first == pp["first_name"].to_numpy()[src]
            first = np.where(clash, np.where(pp["sex"].to_numpy()[dst] == "M", "Thomas", "Emily"), first)
            first = np.where(first == pp["first_name"].to_numpy()[src], first + "a", first)
            pp.loc[dst, "first_name"] = first
            pp.loc[dst, "middle_names"] = None
            pp.loc[dst, "forenames"] = first

    def namesakes_and_twins(self) -> None:
        pp = self.pop.people
        for dataset, match_type in (("tenancy", mt.TENANCY_TWO_BOROUGHS), ("payroll", mt.PAYROLL_TWO_COUNCILS)):
            k = self.near_target(len(self.rows(dataset)))
            a, b = self._namesake_pairs(dataset, k)
            p_left, p_right = self.col("person_id", a), self.col("person_id", b)
            self._copy_name(p_left, p_right, keep_first=False)
            dob_a = self.dob[p_left]
            shifted = dob_a + days(45)
            new_dob = np.where(shifted.astype("datetime64[Y]") == dob_a.astype("datetime64[Y]"), shifted, dob_a - days(45))
            pp.loc[p_right, "dob"] = new_dob
            self.dob[p_right] = new_dob
            pp.loc[p_right, "doppelganger_of"] = p_left
            self.scenario(match_type, "near_miss", "different person, same name and birth year (different day/month and NINO)", a, b)
        k = self.near_target(len(self.rows("tenancy")))
        a, b = self._namesake_pairs("tenancy", k)
        p_left, p_right = self.col("person_id", a), self.col("person_id", b)
        self._copy_name(p_left, p_right, keep_first=True)
        pp.loc[p_right, "dob"] = self.dob[p_left]
        self.dob[p_right] = self.dob[p_left]
        pp.loc[p_right, "twin_of"] = p_left
        pp.loc[p_left, "twin_of"] = p_right
        self.scenario(mt.TENANCY_TWO_BOROUGHS, "near_miss", "twins (same surname and date of birth) each holding a tenancy", a, b)

    def spd_other_adult(self) -> None:
        r = self.records
        hh = self.pop.households
        ct = self.rows("council_tax", alive=True)
        ct = ct[~r["discount"].to_numpy(dtype=bool, na_value=False)[ct] & r["period_end"].isna().to_numpy()[ct]]
        lead = self.col("person_id", ct)
        hid = self.pop.people["household_id"].to_numpy()[lead]
        ct = ct[hh["n_adults"].to_numpy()[hid] >= 2]
        # another adult of the household on the register at the same address
        er = self.rows("electoral_register", alive=True)
        er_frame = pd.DataFrame({"er": er, "address_id": self.col("address_id", er), "person_id": self.col("person_id", er)})
        ct_frame = pd.DataFrame({"ct": ct, "address_id": self.col("address_id", ct), "lead": self.col("person_id", ct)})
        m = ct_frame.merge(er_frame, on="address_id")
        m = m[m["person_id"] != m["lead"]].drop_duplicates("ct").sort_values("ct")
        n_discount = int(r["discount"].fillna(False).astype(bool).sum())
        chosen = self.pick(m["ct"].to_numpy(), self.target(mt.SPD_OTHER_ADULT, n_discount))
        other = m.set_index("ct").loc[chosen, "er"].to_numpy()
        self.records.loc[chosen, "discount"] = True
        self.records.loc[chosen, "amount"] = self.records.loc[chosen, "amount"] * 0.75
        self.records.loc[chosen, "origin"] = "fraud"
        self.scenario(mt.SPD_OTHER_ADULT, "fraud", "single person discount claimed while another adult is registered there", chosen, other)
        # near miss: a former occupant whose registration ended before the discount began
        disc = self.rows("council_tax", alive=True)
        disc = disc[self.records["discount"].to_numpy(dtype=bool, na_value=False)[disc] & (self.col("period_start", disc) > self.E - years(20))]
        k = self.near_target(n_discount)
        rows = self.pick(disc, 3 * k)
        start = self.col("period_start", rows)
        cands = self.pick_people(np.flatnonzero(np.isnat(self.dod)), len(rows))
        rows, start = rows[: len(cands)], start[: len(cands)]
        end = np.minimum(start, self.move_in[cands]) - days(self.rng.integers(1, 60, len(cands)))
        old_start = np.maximum(end - days(self.rng.integers(300, 2000, len(cands))), self.dob[cands] + years(18))
        ok = np.flatnonzero(old_start < end - days(30))[:k]
        rows, cands, end, old_start = rows[ok], cands[ok], end[ok], old_start[ok]
        new = self.append(record_frame("electoral_register", self.col("council_idx", rows), cands, self.col("address_id", rows),
                                       old_start, end, origin="near_miss"))
        self.scenario(mt.SPD_OTHER_ADULT, "near_miss", "former occupant's registration ended before the discount began", rows, new)

    def _deceased_record(self, people: np.ndarray) -> np.ndarray:
        """Row key of each person's central deceased record."""
        dec = self.rows("deceased")
        by_person = pd.Series(dec, index=self.col("person_id", dec))
        return by_person.loc[people].to_numpy()

    def deceased_frauds(self) -> None:
        dead = np.flatnonzero(~np.isnat(self.dod))
        dod = self.dod
        badge_holders = np.unique(self.col("person_id", self.rows("blue_badge")))
        n_badges = len(self.rows("blue_badge"))
        # blue badge never cancelled: still valid after death
        people = self.pick_people(np.setdiff1d(dead, badge_holders), self.target(mt.BLUE_BADGE_DECEASED, n_badges))
        start = uniform_days(self.rng, np.maximum(self.dob[people] + years(18), dod[people] - years(2.5)), dod[people] - days(30))
        new = self.append(record_frame("blue_badge", self.council[people], people, self.address[people], start, start + years(3), origin="fraud"))
        self.scenario(mt.BLUE_BADGE_DECEASED, "fraud", "blue badge still valid after the holder died", new, self._deceased_record(people))
        # near miss: badge cancelled (surrendered) before death
        k = self.near_target(n_badges)
        people = self.pick_people(np.setdiff1d(dead, badge_holders), 3 * k)
        end = dod[people] - days(self.rng.integers(10, 200, len(people)))
        start = np.maximum(end - days(self.rng.integers(200, 1000, len(people))), self.dob[people] + years(18))
        ok = np.flatnonzero(start < end)[:k]
        people, start, end = people[ok], start[ok], end[ok]
        new = self.append(record_frame("blue_badge", self.council[people], people, self.address[people], start, end, origin="near_miss"))
        self.scenario(mt.BLUE_BADGE_DECEASED, "near_miss", "blue badge cancelled before the holder died", new, self._deceased_record(people))

        # concessionary pass not cancelled at death (and sometimes used afterwards)
        passes = self.rows("concessionary_travel")
        pdead = passes[~np.isnat(dod[self.col("person_id", passes)])]
        pdead = pdead[self.col("period_end", pdead) == dod[self.col("person_id", pdead)]]
        rows = self.pick(pdead, self.target(mt.CONCESSIONARY_TRAVEL_DECEASED, len(passes)))
        people = self.col("person_id", rows)
        used_after = self.rng.random(len(rows)) < 0.5
        after = uniform_days(self.rng, dod[people] + days(1), np.full(len(rows), self.E))
        self.records.loc[rows, "period_end"] = NAT
        self.records.loc[rows, "last_used"] = np.where(used_after, after, self.col("last_used", rows))
        self.records.loc[rows, "origin"] = "fraud"
        self.scenario(mt.CONCESSIONARY_TRAVEL_DECEASED, "fraud", "travel pass not cancelled after the holder died (some used since)",
                      rows, self._deceased_record(people))
        # near miss: pass cancelled on the day of death
        rows = self.pick(pdead, self.near_target(len(passes)))
        self.scenario(mt.CONCESSIONARY_TRAVEL_DECEASED, "near_miss", "travel pass cancelled at death",
                      rows, self._deceased_record(self.col("person_id", rows)))

    def ctr_payroll(self) -> None:
        live = self.rows("payroll", ongoing=True, alive=True)
        n_ctr = len(self.rows("council_tax_reduction"))
        rows = self.pick(live, self.target(mt.CTR_PAYROLL, n_ctr))
        pid, pstart = self.col("person_id", rows), self.col("period_start", rows)
        start = uniform_days(self.rng, np.maximum.reduce([self.move_in[pid], pstart - years(1), np.full(len(rows), self.E - years(3))]),
                             np.full(len(rows), self.E - days(30)))
        amount = np.round(self.rng.uniform(5, 30, len(rows)), 2)
        new = self.append(record_frame("council_tax_reduction", self.council[pid], pid, self.address[pid], start, None, amount=amount, origin="fraud"))
        self.scenario(mt.CTR_PAYROLL, "fraud", "council tax reduction claimed while on a council payroll", new, rows)
        # near miss: the reduction ended before the job began
        k = self.near_target(n_ctr)
        rows = self.pick(live, 3 * k)
        pid, pstart = self.col("person_id", rows), self.col("period_start", rows)
        end = pstart - days(self.rng.integers(5, 200, len(rows)))
        start = np.maximum(self.move_in[pid], end - days(self.rng.integers(400, 1500, len(rows))))
        ok = np.flatnonzero(start < end - days(60))[:k]
        rows, pid, start, end = rows[ok], pid[ok], start[ok], end[ok]
        amount = np.round(self.rng.uniform(5, 30, len(rows)), 2)
        new = self.append(record_frame("council_tax_reduction", self.council[pid], pid, self.address[pid], start, end, amount=amount, origin="near_miss"))
        self.scenario(mt.CTR_PAYROLL, "near_miss", "council tax reduction ended before the job began", new, rows)

    # -- hard negatives: twins and namesakes ---------------------------------------------------
    def hard_target(self, relevant: int) -> int:
        return max(MIN_NEAR_MISS, int(round(self.hard_negative_rate * relevant)))

    def _pair_people(self, left: np.ndarray, right: np.ndarray, k: int, *, same_year: bool) -> tuple[np.ndarray, np.ndarray]:
        """Up to k pairs of distinct unused people from different households (born the same year if asked, else on
        different days); marks them used. Vectorised: the i-th candidate of a birth year on each side pair up."""
        pp = self.pop.people
        hh = pp["household_id"].to_numpy()
        free = ~self.used & (pp["twin_of"].to_numpy() < 0) & (pp["doppelganger_of"].to_numpy() < 0)
        left = self.rng.permutation(np.unique(left))
        left = left[free[left]]
        right = self.rng.permutation(np.unique(right))
        right = right[free[right] & ~np.isin(right, left)]
        year = self.dob.astype("datetime64[Y]").astype(np.int64)
        fa = pd.DataFrame({"a": left, "key": year[left] if same_year else 0})
        fb = pd.DataFrame({"b": right, "key": year[right] if same_year else 0})
        fa["r"] = fa.groupby("key").cumcount()
        fb["r"] = fb.groupby("key").cumcount()
        m = fa.merge(fb, on=["key", "r"], sort=False)
        a, b = m["a"].to_numpy(np.int64), m["b"].to_numpy(np.int64)
        ok = hh[a] != hh[b]
        if not same_year:
            ok &= self.dob[a] != self.dob[b]
        a, b = a[ok][:k], b[ok][:k]
        self.used[a] = True
        self.used[b] = True
        return a, b

    def _make_twin(self, a: np.ndarray, b: np.ndarray) -> None:
        """b becomes a's twin: a's surname and date of birth, b's own (different) forename."""
        pp = self.pop.people
        self._copy_name(a, b, keep_first=True)
        pp.loc[b, "dob"] = self.dob[a]
        self.dob[b] = self.dob[a]
        pp.loc[b, "twin_of"] = a
        pp.loc[a, "twin_of"] = b

    def _make_namesake(self, a: np.ndarray, b: np.ndarray) -> None:
        """b takes a's forenames and surname, keeps its own date of birth."""
        self._copy_name(a, b, keep_first=False)
        self.pop.people.loc[b, "doppelganger_of"] = a

    def _badge_before_death(self, holder: np.ndarray, dead: np.ndarray, home_of: np.ndarray) -> np.ndarray:
        """A live three-year badge for ``holder`` at ``home_of``'s address (issued by that council) in the
        2.5 years before ``dead`` died (row keys)."""
        dod = self.dod[dead]
        start = uniform_days(self.rng, np.maximum(self.dob[holder] + years(18), dod - years(2.5)), dod - days(30))
        return self.append(record_frame("blue_badge", self.council[home_of], holder, self.address[home_of], start,
                                        start + years(3), origin="near_miss"))

    def twins_and_namesakes_as_hard_negatives(self) -> None:
        """Pairs that agree on nearly every identifier but are two people: never to be flagged."""
        dead = np.flatnonzero(~np.isnat(self.dod))
        dead = dead[np.isin(dead, self.col("person_id", self.rows("deceased")))]
        alive = np.flatnonzero(np.isnat(self.dod))
        n_badges = len(self.rows("blue_badge"))
        # a living twin holds a badge at the shared home; the other twin died
        a, b = self._pair_people(dead, alive, self.hard_target(n_badges), same_year=True)
        ok = self.dod[a] - days(30) > np.maximum(self.dob[a] + years(18), self.dod[a] - years(2.5))
        a, b = a[ok], b[ok]
        self._make_twin(a, b)
        badge = self._badge_before_death(b, a, home_of=a)
        self.scenario(mt.BLUE_BADGE_DECEASED, "near_miss",
                      "twin of the deceased (same surname, date of birth and address, different forename) holds a live badge",
                      badge, self._deceased_record(a))
        # a living namesake (same forenames and surname, another date of birth) holds a badge
        a, b = self._pair_people(dead, alive, self.hard_target(n_badges), same_year=False)
        ok = self.dod[a] - days(30) > np.maximum(self.dob[b] + years(18), self.dod[a] - years(2.5))
        a, b = a[ok], b[ok]
        self._make_namesake(a, b)
        badge = self._badge_before_death(b, a, home_of=b)
        self.scenario(mt.BLUE_BADGE_DECEASED, "near_miss",
                      "namesake of the deceased (same forenames and surname, different date of birth) holds a live badge",
                      badge, self._deceased_record(a))

        ctr = self.rows("council_tax_reduction", ongoing=True, alive=True)
        pay = self.rows("payroll", ongoing=True, alive=True)
        ctr_by_person = pd.Series(ctr, index=self.col("person_id", ctr))
        ctr_by_person = ctr_by_person[~ctr_by_person.index.duplicated()]
        pay_by_person = pd.Series(pay, index=self.col("person_id", pay))
        pay_by_person = pay_by_person[~pay_by_person.index.duplicated()]
        n_ctr = len(self.rows("council_tax_reduction"))
        # twins at one address: one claims the reduction, the other is on a council payroll
        a, b = self._pair_people(ctr_by_person.index.to_numpy(), pay_by_person.index.to_numpy(), self.hard_target(n_ctr),
                                 same_year=True)
        self._make_twin(a, b)
        c_rows, p_rows = ctr_by_person.loc[a].to_numpy(), pay_by_person.loc[b].to_numpy()
        self.records.loc[p_rows, "address_id"] = self.col("address_id", c_rows)
        self.scenario(mt.CTR_PAYROLL, "near_miss",
                      "twins at one address (same surname and date of birth): one claims council tax reduction, the other is on the payroll",
                      c_rows, p_rows)
        # namesakes: same forenames and surname, another date of birth and address
        a, b = self._pair_people(ctr_by_person.index.to_numpy(), pay_by_person.index.to_numpy(), self.hard_target(n_ctr),
                                 same_year=False)
        self._make_namesake(a, b)
        self.scenario(mt.CTR_PAYROLL, "near_miss",
                      "namesakes (same forenames and surname, different date of birth): one claims council tax reduction, the other is on the payroll",
                      ctr_by_person.loc[a].to_numpy(), pay_by_person.loc[b].to_numpy())
