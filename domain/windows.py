"""The 16 permit acceptance windows (许可受理窗口) of the notice, with their phones."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Window(StrEnum):
    CITY = "city"
    SHANGCHENG = "shangcheng"
    GONGSHU = "gongshu"
    XIHU = "xihu"
    BINJIANG = "binjiang"
    XIAOSHAN = "xiaoshan"
    YUHANG = "yuhang"
    LINPING = "linping"
    QIANTANG = "qiantang"
    FUYANG = "fuyang"
    LINAN = "linan"
    TONGLU = "tonglu"
    CHUNAN = "chunan"
    JIANDE = "jiande"
    WEST_LAKE_SCENIC = "west_lake_scenic"
    CHENGXI_CORRIDOR = "chengxi_corridor"


@dataclass(frozen=True)
class WindowInfo:
    code: Window
    name: str
    phone: str  # local number; Hangzhou's area code is 0571


AREA_CODE = "0571"

WINDOWS: tuple[WindowInfo, ...] = (
    WindowInfo(Window.CITY, "杭州市生态环境局", "85085326"),
    WindowInfo(Window.SHANGCHENG, "上城分局", "87654130"),
    WindowInfo(Window.GONGSHU, "拱墅分局", "86610056"),
    WindowInfo(Window.XIHU, "西湖分局", "88156310"),
    WindowInfo(Window.BINJIANG, "高新区（滨江）分局", "89521576"),
    WindowInfo(Window.XIAOSHAN, "萧山分局", "82899252"),
    WindowInfo(Window.YUHANG, "余杭分局", "89395014"),
    WindowInfo(Window.LINPING, "临平分局", "89163927"),
    WindowInfo(Window.QIANTANG, "钱塘分局", "82987912"),
    WindowInfo(Window.FUYANG, "富阳分局", "63155731"),
    WindowInfo(Window.LINAN, "临安分局", "23616561"),
    WindowInfo(Window.TONGLU, "桐庐分局", "64217158"),
    WindowInfo(Window.CHUNAN, "淳安分局", "64819820"),
    WindowInfo(Window.JIANDE, "建德分局", "64780217"),
    WindowInfo(Window.WEST_LAKE_SCENIC, "杭州西湖风景名胜区管理委员会城市管理局", "87173449"),
    WindowInfo(Window.CHENGXI_CORRIDOR, "杭州城西科创大走廊管理委员会规划建设局", "88720233"),
)
