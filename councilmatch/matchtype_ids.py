"""Ids of the match types shipped with councilmatch (matching/matchtypes/*.yaml).

The generator plants fraud and near-misses for these; evaluation scores per id.
"""

TENANCY_TWO_BOROUGHS = "tenancy_two_boroughs"          # tenancy <-> tenancy, different councils, periods overlap
WAITING_LIST_TENANCY = "waiting_list_tenancy"          # waiting list <-> tenancy (any council), periods overlap
SPD_OTHER_ADULT = "spd_other_adult"                    # council tax SPD <-> electoral register, same council, same address, different person, periods overlap
PAYROLL_TWO_COUNCILS = "payroll_two_councils"          # payroll <-> payroll, different councils, periods overlap
BLUE_BADGE_DECEASED = "blue_badge_deceased"            # blue badge <-> deceased, badge still valid after date of death
CONCESSIONARY_TRAVEL_DECEASED = "concessionary_travel_deceased"  # pass used (last_used) or valid after date of death
CTR_PAYROLL = "ctr_payroll"                            # council tax reduction <-> payroll (any council), periods overlap

ALL = (
    TENANCY_TWO_BOROUGHS, WAITING_LIST_TENANCY, SPD_OTHER_ADULT, PAYROLL_TWO_COUNCILS,
    BLUE_BADGE_DECEASED, CONCESSIONARY_TRAVEL_DECEASED, CTR_PAYROLL,
)
