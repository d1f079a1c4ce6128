"""The demo's bundled data: orders and revenue by region and month of 2025, and its aggregates."""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CATEGORIES",
    "CUSTOMERS",
    "MONTHLY_GROWTH",
    "MONTHS",
    "ORDER_VALUE",
    "REGIONS",
    "ROWS",
    "SALES_CHANNELS",
    "SAMPLE_FILE",
    "OrderRow",
    "daily_rows",
    "money",
    "orders_by_month",
    "orders_by_region",
    "percent",
    "quarter_of",
    "revenue_by_region",
    "total_orders",
    "total_revenue",
]

REGIONS: Final = ("North", "South", "East", "West")
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BASE_ORDERS: Final = {"North": 412, "South": 356, "East": 518, "West": 604}
#: Each region's growth in orders per month, on top of the season.
MONTHLY_GROWTH: Final = {"North": 0.008, "South": 0.021, "East": 0.004, "West": 0.015}
_SEASON: Final = (0.84, 0.79, 0.90, 0.94, 0.98, 1.03, 0.97, 1.00, 1.06, 1.11, 1.27, 1.45)
#: The average order's value in USD, by region.
ORDER_VALUE: Final = {"North": 84.5, "South": 71.9, "East": 92.3, "West": 88.1}
#: Product categories and their share of revenue.
CATEGORIES: Final[tuple[tuple[str, float], ...]] = (
    ("Electronics", 0.33),
    ("Home & Kitchen", 0.24),
    ("Outdoor", 0.17),
    ("Apparel", 0.15),
    ("Toys", 0.11),
)
#: Sales channels and their share of orders.
SALES_CHANNELS: Final[tuple[tuple[str, float], ...]] = (
    ("Online shop", 0.58),
    ("Stores", 0.29),
    ("Marketplaces", 0.13),
)
#: The largest customers: name, region, orders, revenue in USD.
CUSTOMERS: Final[tuple[tuple[str, str, int, float], ...]] = (
    ("Northwind Traders", "North", 412, 41_890.0),
    ("Blue Harbor Supply", "West", 388, 37_120.5),
    ("Copperline Goods", "East", 351, 35_410.0),
    ("Sunfield Markets", "South", 342, 24_880.2),
    ("Redwood Outfitters", "West", 317, 29_955.9),
    ("Lakeside Home", "North", 298, 25_002.3),
    ("Brightpath Retail", "East", 287, 27_390.0),
    ("Pinecrest Co-op", "West", 264, 22_740.7),
    ("Harborview Stores", "South", 251, 18_110.4),
    ("Eastgate Electronics", "East", 240, 26_640.0),
    ("Summit Outdoor", "West", 233, 19_805.0),
    ("Maple & Oak", "North", 226, 18_870.1),
    ("Coastal Kitchens", "South", 219, 16_206.0),
    ("Ironbridge Supply", "East", 205, 19_270.0),
    ("Golden Gate Goods", "West", 198, 17_820.0),
    ("Riverbend Market", "South", 187, 13_090.0),
    ("Highland Traders", "North", 176, 14_784.0),
    ("Silverline Toys", "West", 168, 15_120.0),
    ("Old Town Hardware", "East", 154, 14_168.0),
    ("Bayside Apparel", "South", 141, 9_870.0),
)

#: The file the page attaches to its file question (`files.sample_csv`).
SAMPLE_FILE: Final = "orders-q4-2025.csv"


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One row of the sample table: a region's orders and revenue in one month of 2025."""

    region: str
    month: str
    orders: int
    revenue: float


def _rows() -> tuple[OrderRow, ...]:
    rows = []
    for region in REGIONS:
        for index, month in enumerate(MONTHS):
            growth = (1 + MONTHLY_GROWTH[region]) ** index
            orders = round(_BASE_ORDERS[region] * _SEASON[index] * growth)
            rows.append(OrderRow(region, month, orders, round(orders * ORDER_VALUE[region], 2)))
    return tuple(rows)


#: The whole sample dataset: 4 regions by 12 months.
ROWS: Final = _rows()


# --------------------------------------------------------------------------- aggregates


def orders_by_region() -> dict[str, int]:
    return {r: sum(row.orders for row in ROWS if row.region == r) for r in REGIONS}


def orders_by_month(region: str | None = None) -> dict[str, int]:
    return {
        m: sum(row.orders for row in ROWS if row.month == m and region in (None, row.region))
        for m in MONTHS
    }


def revenue_by_region() -> dict[str, float]:
    return {r: sum(row.revenue for row in ROWS if row.region == r) for r in REGIONS}


def quarter_of(month: str) -> str:
    return f"Q{MONTHS.index(month) // 3 + 1}"


def total_orders() -> int:
    return sum(row.orders for row in ROWS)


def total_revenue() -> float:
    return sum(row.revenue for row in ROWS)


def money(value: float) -> str:
    if value >= 1_000_000:
        return f"${value / 1_000_000:,.2f}M"
    return f"${value:,.0f}"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%"


#: Orders by weekday (Monday first), relative to an average day.
_WEEKDAY: Final = (1.04, 0.98, 0.99, 1.02, 1.12, 0.97, 0.88)


def daily_rows() -> list[list[Any]]:
    """Every region's orders and revenue on every day of 2025 (1,460 rows)."""
    rows: list[list[Any]] = []
    for row in ROWS:
        month = MONTHS.index(row.month) + 1
        days = calendar.monthrange(2025, month)[1]
        for day in range(1, days + 1):
            date = datetime.date(2025, month, day)
            orders = round(row.orders / days * _WEEKDAY[date.weekday()])
            revenue = round(orders * ORDER_VALUE[row.region], 2)
            rows.append([date.isoformat(), row.region, orders, f"{revenue:.2f}"])
    rows.sort(key=lambda r: (r[0], REGIONS.index(r[1])))
    return rows
