"""Project tier marks and the two classes the notice derives from them."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    DISTRICT_KEY = "district_key"  # 区县（市）级重点项目
    CITY_KEY = "city_key"  # 市重点
    PROVINCIAL_KEY = "provincial_key"  # 省重点
    QIANXIANG_WANYI = "qianxiang_wanyi"  # "千项万亿"工程项目
    MINISTRY_CONTACT = "ministry_contact"  # 部司重点联系项目
    PROVINCIAL_DEPT_CONTACT = "provincial_dept_contact"  # 省厅重点联系项目


#: 重大项目: every tier but the district level alone (柔性服务措施 一、二、三).
MAJOR_TIERS = frozenset(Tier) - {Tier.DISTRICT_KEY}


def is_key(tiers: tuple[Tier, ...]) -> bool:
    """重点项目: any tier mark at all (容缺办理, 温馨提醒)."""
    return len(tiers) > 0


def is_major(tiers: tuple[Tier, ...]) -> bool:
    """重大项目: at least one tier above the district level (提前介入, 专人对接, 助企服务员)."""
    return any(t in MAJOR_TIERS for t in tiers)
