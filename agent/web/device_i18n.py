"""The words of the page's "add a device from a profile" form (merged into the page's catalogue)."""

from __future__ import annotations

from config.lang import Lang

DEVICE_MESSAGES: dict[str, dict[Lang, str]] = {
    "add_device": {"zh": "按模板添加设备", "en": "Add a device from a profile"},
    "profile": {"zh": "设备模板", "en": "Profile"},
    "device_id": {"zh": "设备名称（id）", "en": "Device name (id)"},
    "meter_address": {"zh": "表地址（12 位）", "en": "Meter address (12 digits)"},
    "interval": {"zh": "采集周期", "en": "Poll interval"},
    "probe_first": {"zh": "先探测（读一个测点）", "en": "Probe first (read one point)"},
    "preview": {"zh": "预览改动", "en": "Preview"},
    "add_apply": {"zh": "添加并应用", "en": "Add and apply"},
    "points_n": {"zh": "{n} 个测点", "en": "{n} points"},
    "device_preview_ok": {
        "zh": "配置有效。将在配置文件中加入：",
        "en": "Valid. This goes into the configuration file:",
    },
    "probe_ok": {"zh": "探测成功：{point} = {value} {unit}。", "en": "Probe answered: {point} = {value} {unit}."},
    "probe_failed": {
        "zh": "探测失败，未添加：{reason}（检查后重试，或不勾选“先探测”直接添加）",
        "en": "The probe failed; nothing added: {reason} (check and retry, or untick “probe first” to add it anyway)",
    },
    "not_editable": {
        "zh": "无法自动添加到当前配置文件：{detail}",
        "en": "The device cannot be added to the configuration file automatically: {detail}",
    },
}
