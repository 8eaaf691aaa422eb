"""The config loader's words in Chinese and English (``headframe check``, the page's refusals).

The loader builds its problems in English (they go into logs and the reload-rejected record
like that); ``problem_text`` shows one in the technician's language. The key path and the
value found stay exactly as written in the file — the technician searches for them — only
the frame, the explanation and the fix are translated. A phrase not in the catalogue is
shown in English rather than lost.
"""

from __future__ import annotations

from config.errors import ConfigProblem
from config.lang import Catalogue, Lang, Localizer, current

#: the frame of one problem and the CLI's summaries
FRAME: Catalogue = {
    "problem": {
        "en": "{file}:{line}:{column}: {key}: found {found}; expected {expected}",
        "zh": "{file}:{line}:{column}: {key}: 发现 {found}；应为 {expected}",
    },
    "top_level": {"en": "(top level)", "zh": "（顶层）"},
    "check_failed": {
        "en": "{file}: {count} problem(s); nothing was started",
        "zh": "{file}: 共 {count} 处问题；未启动任何东西",
    },
    "check_ok": {
        "en": "{file}: OK (gateway {site}/{gateway}, {devices} device(s), {cameras} camera(s), broker {broker})",
        "zh": "{file}: 通过（网关 {site}/{gateway}，{devices} 台设备，{cameras} 路摄像头，消息服务器 {broker}）",
    },
    "check_warning": {"en": "{file}: warning: {warning}", "zh": "{file}: 警告：{warning}"},
}

#: the found/expected phrases of the loader, the cross-checks and pydantic's common errors
PHRASES: Catalogue = {
    # config/yamlio.py
    "missing": {"en": "nothing (the key is missing)", "zh": "空（缺少该键）"},
    "set_here": {"en": "'{key}' to be set here", "zh": "在此处设置 '{key}'"},
    "set_here_tag": {
        "en": "'{key}' to be set here (it decides which other keys apply)",
        "zh": "在此处设置 '{key}'（它决定其余哪些键适用）",
    },
    "unknown_key": {"en": "unknown key '{key}'", "zh": "未知的键 '{key}'"},
    "documented_keys": {
        "en": "only documented keys (check the spelling; see config/examples/)",
        "zh": "只用文档中列出的键（检查拼写；参见 config/examples/）",
    },
    "one_of": {"en": "one of {choices}", "zh": "以下之一：{choices}"},
    "yaml_syntax": {"en": "YAML that does not parse ({what})", "zh": "无法解析的 YAML（{what}）"},
    "valid_yaml": {"en": "valid YAML", "zh": "合法的 YAML"},
    "secret_hidden": {
        "en": "a value (hidden: secrets belong in a *_file)",
        "zh": "一个值（已隐藏：密钥应放在 *_file 文件中）",
    },
    # config/loader.py
    "not_mapping": {"en": "a document that is not a mapping", "zh": "不是映射（键: 值）的文档"},
    "top_keys": {
        "en": "keys such as 'gateway:' and 'uplink:' at the top level",
        "zh": "顶层为 'gateway:'、'uplink:' 等键",
    },
    "no_file": {"en": "no readable file ({why})", "zh": "无法读取的文件（{why}）"},
    "a_config_file": {
        "en": "a YAML config file (see config/examples/minimal.yaml)",
        "zh": "一个 YAML 配置文件（参见 config/examples/minimal.yaml）",
    },
    "not_utf8": {"en": "bytes that are not UTF-8 ({why})", "zh": "非 UTF-8 编码的内容（{why}）"},
    "utf8_file": {"en": "a UTF-8 text file", "zh": "UTF-8 文本文件"},
    "readable_file": {"en": "a readable file", "zh": "可读取的文件"},
    # config/types.py
    "duration": {
        "en": "a duration such as 30s, 5m, 2h or 7d (plain numbers are seconds)",
        "zh": "时长，如 30s、5m、2h 或 7d（纯数字按秒计）",
    },
    "duration_negative": {"en": "a duration that is not negative", "zh": "不为负的时长"},
    "size": {
        "en": "a size such as 512MiB or 2GB (plain numbers are bytes)",
        "zh": "大小，如 512MiB 或 2GB（纯数字按字节计）",
    },
    # config/drivers.py: devices and buses
    "device_id_once": {"en": "a device id used once", "zh": "不重复的设备 id（该 id 已被使用）"},
    "bus_name_once": {"en": "a bus name used once", "zh": "不重复的总线名"},
    "one_of_buses": {"en": "one of the buses: {names}", "zh": "已定义的总线之一：{names}"},
    "profile_family": {
        "en": "{profile}, a {family} profile",
        "zh": "{profile}，这是 {family} 协议的模板",
    },
    "profile_for": {
        "en": "a profile for {protocol} devices: one of {names}",
        "zh": "适用于 {protocol} 设备的模板，以下之一：{names}",
    },
    "device_point": {"en": "device.point of a configured device", "zh": "已配置设备的 设备.测点"},
    "profile_or_points": {
        "en": "'profile:' or 'points:' (a device with nothing to read)",
        "zh": "'profile:' 或 'points:'（否则该设备没有可读的内容）",
    },
    "host_for_tcp": {"en": "'host' for a modbus_tcp device", "zh": "modbus_tcp 设备需要 'host'（IP 地址或主机名）"},
    "bus_for": {"en": "'bus' (a name from buses:) for a {protocol} device", "zh": "{protocol} 设备需要 'bus'（buses: 中的名称）"},
    "meter_address": {
        "en": "'address': the meter's 12-digit address (see: headframe probe dlt645 PORT --discover)",
        "zh": "'address'：电表的 12 位地址（可用 headframe probe dlt645 PORT --discover 读取）",
    },
    "rtu_unit_zero": {
        "en": "a unit id 1..247 on a serial bus (0 is the broadcast address: no device answers it)",
        "zh": "串口总线上的从站号 1..247（0 是广播地址，没有设备会应答）",
    },
    "no_key_here": {
        "en": "no '{key}' on a {protocol} device ('{key2}' is a setting of {belongs}; remove it, or check 'protocol:')",
        "zh": "{protocol} 设备没有 '{key}'（'{key2}' 属于 {belongs}；删除它，或检查 'protocol:'）",
    },
    "unique_points": {"en": "unique point names within a device", "zh": "同一设备内测点名不重复"},
    "bus_port_taken": {
        "en": "{port}, already used by bus '{bus}' (buses[{index}])",
        "zh": "{port}，已被总线 '{bus}'（buses[{index}]）使用",
    },
    "bus_port_taken_other": {
        "en": "{port}, already used by bus '{bus}' (buses[{index}]) with different settings",
        "zh": "{port}，已被总线 '{bus}'（buses[{index}]）以不同的串口参数使用",
    },
    "one_bus_per_port": {
        "en": "one bus entry per serial port; put every device on that port on the same bus",
        "zh": "每个串口只配一条总线；该串口上的所有设备都放在同一条总线下",
    },
    "bit_for_bit": {"en": "'bit: 0..15' for a point of type bit", "zh": "类型为 bit 的测点需要 'bit: 0..15'"},
    "length_for_string": {
        "en": "'length' (registers) for a point of type string",
        "zh": "类型为 string 的测点需要 'length'（寄存器个数）",
    },
    "bool_for_bits": {
        "en": "type bool for table {table} (coils and discrete inputs are single bits)",
        "zh": "寄存器区 {table} 的测点类型应为 bool（线圈和离散输入都是单个位）",
    },
    "bit_in_register": {
        "en": "type bit (with 'bit:') for a flag inside a register; bool is for coils/discrete",
        "zh": "寄存器中的标志位用类型 bit（加 'bit:'）；bool 只用于线圈/离散输入",
    },
    "point_end": {"en": "a point that ends at or below address 65535", "zh": "结束地址不超过 65535 的测点"},
    "point_group": {
        "en": "point {point} in a poll group that exists (groups: {groups})",
        "zh": "测点 {point} 属于已定义的采集组（已有：{groups}）",
    },
    "di_on_point": {
        "en": "'di:' (data identifier) on point {point} of a dlt645 device",
        "zh": "dlt645 设备的测点 {point} 需要 'di:'（数据标识）",
    },
    "power_hysteresis": {
        "en": "off_below_kw not above on_above_kw (that is the hysteresis band)",
        "zh": "off_below_kw 不大于 on_above_kw（二者之间是回差带）",
    },
    "power_points": {
        "en": "'power_points' (device.point of meter power, kW) when enabled",
        "zh": "启用时需要 'power_points'（电表功率的 设备.测点，kW）",
    },
    # config/spine.py, config/web.py, config/power.py
    "username_with_password": {"en": "'username' together with 'password_file'", "zh": "'username' 与 'password_file' 同时设置"},
    "reconnect_order": {"en": "reconnect_max at least reconnect_min", "zh": "reconnect_max 不小于 reconnect_min"},
    "retry_order": {"en": "retry_max at least retry_min", "zh": "retry_max 不小于 retry_min"},
    "client_cert_pair": {
        "en": "cert_file and key_file together (a client certificate needs both)",
        "zh": "cert_file 与 key_file 同时设置（客户端证书两者都需要）",
    },
    "uplink_tls": {
        "en": "a 'tls:' section: broker {host} is not on loopback, and credentials and site data "
        "must not cross a network in clear text",
        "zh": "'tls:' 配置：消息服务器 {host} 不在本机，凭据和现场数据不能以明文经过网络",
    },
    "web_tls": {
        "en": "a 'tls:' section: {listen} is not loopback, and the password and the site's "
        "configuration must not cross a network in clear text",
        "zh": "'tls:' 配置：{listen} 不是本机回环地址，密码和现场配置不能以明文经过网络",
    },
    "web_password": {
        "en": "'password_file' when enabled (write one with: headframe web-password FILE)",
        "zh": "启用时需要 'password_file'（用 headframe web-password FILE 生成）",
    },
    "gpio_path": {
        "en": "a 'gpio:' section with 'path' when source is gpio",
        "zh": "source 为 gpio 时需要带 'path' 的 'gpio:' 配置",
    },
    # pydantic's own messages (by error type)
    "ge": {"en": "Input should be greater than or equal to {n}", "zh": "大于或等于 {n} 的值"},
    "le": {"en": "Input should be less than or equal to {n}", "zh": "小于或等于 {n} 的值"},
    "gt": {"en": "Input should be greater than {n}", "zh": "大于 {n} 的值"},
    "lt": {"en": "Input should be less than {n}", "zh": "小于 {n} 的值"},
    "int_parsing": {
        "en": "Input should be a valid integer, unable to parse string as an integer",
        "zh": "整数（这段文字不是整数）",
    },
    "int_from_float": {
        "en": "Input should be a valid integer, got a number with a fractional part",
        "zh": "整数（不能有小数部分）",
    },
    "int_type": {"en": "Input should be a valid integer", "zh": "整数"},
    "float_parsing": {
        "en": "Input should be a valid number, unable to parse string as a number",
        "zh": "数字（这段文字不是数字）",
    },
    "float_type": {"en": "Input should be a valid number", "zh": "数字"},
    "bool_parsing": {
        "en": "Input should be a valid boolean, unable to interpret input",
        "zh": "布尔值 true 或 false",
    },
    "bool_type": {"en": "Input should be a valid boolean", "zh": "布尔值 true 或 false"},
    "string_type": {"en": "Input should be a valid string", "zh": "文字（字符串）"},
    "list_type": {"en": "Input should be a valid list", "zh": "列表（- 开头的各项）"},
    "dict_type": {"en": "Input should be a valid dictionary", "zh": "映射（键: 值）"},
    "pattern": {"en": "String should match pattern '{pattern}'", "zh": "符合格式 '{pattern}' 的文字"},
    "literal": {"en": "Input should be {choices}", "zh": "以下之一：{choices}"},
    "too_long": {"en": "String should have at most {n} characters", "zh": "最多 {n} 个字符的文字"},
}

localize = Localizer(PHRASES)


def problem_text(problem: ConfigProblem, lang: Lang | None = None) -> str:
    """One located problem in the technician's language; key path and found value as written."""
    lang = lang or current()
    if lang == "en":
        return str(problem)
    return FRAME["problem"][lang].format(
        file=problem.file,
        line=problem.line,
        column=problem.column,
        key=problem.key or FRAME["top_level"][lang],
        found=localize(problem.found, lang),
        expected=localize(problem.expected, lang),
    )
