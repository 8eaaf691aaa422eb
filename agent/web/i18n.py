"""The page's words in Chinese and English. Every message the page or its API shows is here.

Keys are stable (the mechanism, shared with the CLI's catalogues, is config/lang.py); the
page receives the whole catalogue of its language once (as JSON data, set with textContent —
never as HTML).
"""

from __future__ import annotations

from agent.web.device_i18n import DEVICE_MESSAGES
from agent.web.i18n_camera import CAMERA_MESSAGES
from config.lang import LANGS, Lang, render

__all__ = ["LANGS", "MESSAGES", "Lang", "catalogue", "choose", "text"]

MESSAGES: dict[str, dict[Lang, str]] = {
    "title": {"zh": "Headframe 网关 — 现场调试", "en": "Headframe gateway — site setup"},
    "login": {"zh": "登录", "en": "Log in"},
    "logout": {"zh": "退出", "en": "Log out"},
    "password": {"zh": "密码", "en": "Password"},
    "wrong_password": {"zh": "密码错误。", "en": "Wrong password."},
    "locked_out": {
        "zh": "失败次数过多，请 {seconds} 秒后再试。",
        "en": "Too many failed logins: try again in {seconds} s.",
    },
    "session_expired": {"zh": "会话已过期，请重新登录。", "en": "Your session has expired: log in again."},
    "forged_request": {
        "zh": "请求被拒绝：缺少或错误的安全令牌（CSRF）。请刷新页面后重试。",
        "en": "Request refused: missing or wrong security token (CSRF). Reload the page and try again.",
    },
    "bad_origin": {
        "zh": "请求被拒绝：来自其他网站。",
        "en": "Request refused: it came from another site.",
    },
    "bad_request": {"zh": "请求格式错误：{detail}", "en": "Malformed request: {detail}"},
    "password_file": {
        "zh": "网关无法读取密码文件，请联系管理员：{detail}",
        "en": "The gateway cannot read its password file; ask the administrator: {detail}",
    },
    "devices": {"zh": "设备", "en": "Devices"},
    "device": {"zh": "设备", "en": "Device"},
    "state": {"zh": "状态", "en": "State"},
    "last_error": {"zh": "最近错误", "en": "Last error"},
    "point": {"zh": "测点", "en": "Point"},
    "value": {"zh": "数值", "en": "Value"},
    "quality": {"zh": "质量", "en": "Quality"},
    "age": {"zh": "时间（秒前）", "en": "Age (s)"},
    "no_devices": {"zh": "尚无设备数据。", "en": "No device data yet."},
    "alarms": {"zh": "报警", "en": "Alarms"},
    "open_alarms": {"zh": "未关闭的报警", "en": "Open alarms"},
    "no_alarms": {"zh": "没有未关闭的报警。", "en": "No open alarms."},
    "severity": {"zh": "级别", "en": "Severity"},
    "raised_at": {"zh": "发生时间", "en": "Raised"},
    "ack": {"zh": "确认", "en": "Acknowledge"},
    "handle": {"zh": "已处置", "en": "Handled"},
    "close": {"zh": "关闭", "en": "Close"},
    "done": {"zh": "已完成：{what}", "en": "Done: {what}"},
    "refused": {"zh": "未执行：{why}", "en": "Not done: {why}"},
    "health": {"zh": "网关状态", "en": "Gateway health"},
    "buffer": {"zh": "缓存", "en": "Buffer"},
    "uplink": {"zh": "上传链路", "en": "Uplink"},
    "pending": {"zh": "待发送记录", "en": "Records waiting"},
    "connected": {"zh": "已连接", "en": "connected"},
    "disconnected": {"zh": "未连接", "en": "not connected"},
    "updated": {"zh": "更新于", "en": "Updated"},
    "stale_page": {"zh": "与网关的连接中断，数据可能已过时。", "en": "Lost contact with the gateway: data may be stale."},
    "language": {"zh": "English", "en": "中文"},
    "configuration": {"zh": "配置文件", "en": "Configuration"},
    "check": {"zh": "检查", "en": "Check"},
    "save": {"zh": "保存并应用", "en": "Save and apply"},
    "config_ok": {
        "zh": "配置有效。与运行中的配置相比的改动：",
        "en": "The configuration is valid. Changes against the running one:",
    },
    "config_invalid": {
        "zh": "配置无效，未保存。请按下列提示修改：",
        "en": "The configuration is not valid and was not saved. Fix what is listed:",
    },
    "config_conflict": {
        "zh": "别人在你打开之后已修改了配置文件，未保存。请重新载入后再修改。",
        "en": "Someone else changed the configuration since you opened it; nothing was saved. Reload and edit again.",
    },
    "config_unchanged": {"zh": "没有改动，未保存。", "en": "No change; nothing saved."},
    "config_saved": {"zh": "已保存并生效（已记录配置审计）。", "en": "Saved and in effect (recorded in the config audit)."},
    "config_saved_not_applied": {
        "zh": "已保存，但网关未能应用（见日志）；仍在运行旧配置。",
        "en": "Saved, but the gateway could not apply it (see its log); the old configuration runs on.",
    },
    "reload_config": {"zh": "重新载入", "en": "Reload"},
    "probe": {"zh": "读寄存器", "en": "Read registers"},
    "probe_read": {"zh": "读取", "en": "Read"},
    "scan": {"zh": "RS-485 总线扫描", "en": "RS-485 bus scan"},
    "scan_run": {"zh": "扫描", "en": "Scan"},
    "scan_none": {
        "zh": "没有从站应答：检查接线（A/B 是否接反）、终端电阻、设备是否上电。",
        "en": "No unit answered: check the wiring (A/B swapped?), termination, and that the device is powered.",
    },
    "protocol": {"zh": "协议", "en": "Protocol"},
    "host": {"zh": "地址", "en": "Host"},
    "port": {"zh": "端口", "en": "Port"},
    "bus": {"zh": "总线", "en": "Bus"},
    "unit": {"zh": "从站号", "en": "Unit"},
    "table": {"zh": "寄存器区", "en": "Table"},
    "address": {"zh": "起始地址", "en": "Address"},
    "count": {"zh": "个数", "en": "Count"},
    "type": {"zh": "类型", "en": "Type"},
    "order": {"zh": "字节序", "en": "Byte order"},
    "first_unit": {"zh": "从", "en": "From unit"},
    "last_unit": {"zh": "到", "en": "To unit"},
    "config_restart_needed": {
        "zh": "其中 {sections} 的改动需重启网关服务后生效。",
        "en": "Changes to {sections} take effect when the gateway service restarts.",
    },
}

MESSAGES.update(CAMERA_MESSAGES)  # the camera view's words (agent/web/i18n_camera.py)


def text(key: str, lang: Lang, **args: object) -> str:
    return render(MESSAGES, key, lang, **args)


def catalogue(lang: Lang) -> dict[str, str]:
    return {key: by_lang[lang] for key, by_lang in MESSAGES.items()}


def choose(query: str | None, cookie: str | None, accept: str | None, default: Lang) -> Lang:
    """The language asked for: ``?lang=``, then the cookie, then Accept-Language, then the site default."""
    for value in (query, cookie):
        if value in LANGS:
            return value
    if accept:
        for part in accept.split(","):
            tag = part.split(";")[0].strip().lower()
            if tag.startswith("zh"):
                return "zh"
            if tag.startswith("en"):
                return "en"
    return default


MESSAGES.update(DEVICE_MESSAGES)  # the device form's words (agent/web/device_i18n.py)
