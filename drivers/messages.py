"""The technician tools' words (``probe``, ``scan``, ``points``) and the drivers' error hints, zh/en.

The drivers build their reasons in English (they go into ``device_state`` records and the
platform reads them so); ``reason_text`` shows one in the technician's language by matching
the English templates below. tests/drivers/test_cli_lang.py checks that every hint the drivers
can raise is in here, so a reworded hint cannot silently fall back to English.
"""

from __future__ import annotations

from config.lang import Catalogue, Lang, Localizer, current, render

#: driver reasons (drivers/modbus_*.py, drivers/dlt645*.py, drivers/bus.py, drivers/errors.py)
REASONS: Catalogue = {
    "tcp_no_answer": {
        "en": "timeout: no answer — check the address, port and unit id",
        "zh": "超时：无应答 — 检查地址、端口和从站号",
    },
    "rtu_no_answer": {
        "en": "timeout: no answer — check wiring (A/B), baud rate, parity and unit id",
        "zh": "超时：无应答 — 检查接线（A/B）、波特率、校验位和从站号",
    },
    "dlt645_no_answer": {
        "en": "timeout: no answer — check wiring, baud rate (DL/T 645 default 2400 8E1), address",
        "zh": "超时：无应答 — 检查接线、波特率（DL/T 645 默认 2400 8E1）、表地址",
    },
    "cannot_connect": {"en": "cannot connect to {where} ({why})", "zh": "无法连接 {where}（{why}）"},
    "refused": {"en": "refused or unreachable", "zh": "被拒绝或不可达"},
    "timeout_word": {"en": "timeout", "zh": "超时"},
    "connection_lost": {"en": "connection lost ({why})", "zh": "连接中断（{why}）"},
    "bad_frame": {
        "en": "bad frame: answer did not parse — check for two masters on the bus, baud rate/parity, "
        "or a device speaking another protocol",
        "zh": "报文错误：应答无法解析 — 检查总线上是否有两个主站、波特率/校验位，或设备是否使用其他协议",
    },
    "garbage": {"en": "garbage: {what}", "zh": "乱码：{what}"},
    "exception": {"en": "exception {code}: {what}", "zh": "异常 {code}：{what}"},
    "ex_1": {"en": "illegal function (the device does not support this request)", "zh": "非法功能码（设备不支持此请求）"},
    "ex_2": {
        "en": "illegal data address (register not in the device's map)",
        "zh": "非法数据地址（该寄存器不在设备的寄存器表中）",
    },
    "ex_3": {"en": "illegal data value", "zh": "非法数据值"},
    "ex_4": {"en": "slave device failure", "zh": "从站设备故障"},
    "ex_5": {"en": "acknowledge (request accepted, still processing)", "zh": "已确认（请求已接受，仍在处理）"},
    "ex_6": {"en": "slave device busy", "zh": "从站设备忙"},
    "ex_8": {"en": "memory parity error", "zh": "存储奇偶校验错误"},
    "ex_10": {"en": "gateway path unavailable", "zh": "网关路径不可用"},
    "ex_11": {"en": "gateway target device failed to respond", "zh": "网关后的目标设备无应答"},
    "ex_unknown": {"en": "unknown exception code", "zh": "未知异常码"},
    "meter_error": {"en": "meter error {code}: {what}", "zh": "电表错误 {code}：{what}"},
    "met_1": {"en": "other error", "zh": "其他错误"},
    "met_2": {"en": "no requested data (data identifier not supported)", "zh": "无请求数据（不支持该数据标识）"},
    "met_4": {"en": "password error / unauthorised", "zh": "密码错误/未授权"},
    "met_8": {"en": "baud rate cannot be changed", "zh": "波特率不可更改"},
    "met_16": {"en": "annual time zones exceeded", "zh": "年时区数超限"},
    "met_32": {"en": "daily time slots exceeded", "zh": "日时段数超限"},
    "met_64": {"en": "tariffs exceeded", "zh": "费率数超限"},
    "port_missing": {
        "en": "serial port {port} does not exist: check the adapter/cable, and the name (ls /dev/serial/by-id/)",
        "zh": "串口 {port} 不存在：检查 USB 转换器/线缆，以及串口名称（ls /dev/serial/by-id/）",
    },
    "port_denied": {
        "en": "serial port {port}: permission denied — add the service user to the 'dialout' group "
        "(usermod -aG dialout USER) and log in again",
        "zh": "串口 {port}：没有权限 — 把服务用户加入 'dialout' 组（usermod -aG dialout USER）后重新登录",
    },
    "port_busy": {
        "en": "serial port {port} is busy: another program has it open (find it with: fuser {port2})",
        "zh": "串口 {port} 被占用：另一个程序打开了它（用 fuser {port2} 查找）",
    },
    "port_gone": {
        "en": "serial port {port} stopped working (adapter unplugged or failing): check the USB adapter and cable",
        "zh": "串口 {port} 停止工作（转换器被拔出或故障）：检查 USB 转换器和线缆",
    },
    "no_format": {
        "en": "data identifier {di} has no known format (see drivers/dlt645_ids.py)",
        "zh": "数据标识 {di} 没有已知的格式（见 drivers/dlt645_ids.py）",
    },
}

#: what the technician commands print themselves
CLI: Catalogue = {
    "error": {"en": "error: {reason}", "zh": "错误：{reason}"},
    "meter_address": {"en": "meter address: {address}", "zh": "电表地址：{address}"},
    "scan_progress": {"en": "{line} unit {unit} ({n}/{total})", "zh": "{line} 从站 {unit}（{n}/{total}）"},
    "scan_time_bound": {"en": "scan: time bound of {seconds}s reached", "zh": "扫描：已达到时间上限 {seconds} 秒"},
    "scan_found": {"en": "unit {unit} at {line}: {what}", "zh": "从站 {unit}，{line}：{what}"},
    "answered": {"en": "answered", "zh": "有应答"},
    "scan_none": {
        "en": "no unit answered: check wiring (A/B swapped?), termination, and that the device is powered",
        "zh": "没有从站应答：检查接线（A/B 是否接反）、终端电阻，以及设备是否上电",
    },
    "no_device": {
        "en": "no device {device} in {file}; devices: {devices}",
        "zh": "{file} 中没有设备 {device}；已有设备：{devices}",
    },
    "none": {"en": "none", "zh": "无"},
    "points_title": {
        "en": "{device}  state={state}  last_error={error}",
        "zh": "{device}  状态={state}  最近错误={error}",
    },
    "col_point": {"en": "point", "zh": "测点"},
    "col_value": {"en": "value", "zh": "数值"},
    "col_unit": {"en": "unit", "zh": "单位"},
    "col_quality": {"en": "quality", "zh": "质量"},
    "col_reason": {"en": "reason", "zh": "原因"},
}

reason_text_of = Localizer(REASONS)


def reason_text(reason: str, lang: Lang | None = None) -> str:
    """A driver's English reason in the technician's language (as it is when not catalogued)."""
    return reason_text_of(reason, lang)


def say(key: str, lang: Lang | None = None, **args: object) -> str:
    return render(CLI, key, lang or current(), **args)
