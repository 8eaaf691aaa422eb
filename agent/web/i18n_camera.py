"""The camera view's words in Chinese and English (merged into ``agent.web.i18n.MESSAGES``)."""

from __future__ import annotations

from typing import Literal

CAMERA_MESSAGES: dict[str, dict[Literal["zh", "en"], str]] = {
    "cameras": {"zh": "摄像头", "en": "Cameras"},
    "no_cameras": {"zh": "配置中没有摄像头。", "en": "No camera in the configuration."},
    "shape_line": {"zh": "计数线", "en": "Counting line"},
    "shape_zone": {"zh": "区域", "en": "Zone"},
    "shape_seal": {"zh": "封闭区", "en": "Seal zone"},
    "shape_belt": {"zh": "皮带区", "en": "Belt area"},
    "shape_danger": {"zh": "危险区", "en": "Danger zone"},
    "shape_hotwork": {"zh": "动火区", "en": "Hot-work zone"},
    "geometry_outside": {
        "zh": "{what} {name}：第 {n} 个点 ({x}, {y}) 在画面之外，坐标须在 0 到 1 之间。请把它拖回画面内。",
        "en": "{what} {name}: point {n} ({x}, {y}) is outside the picture; coordinates must be within 0..1. Drag it back inside.",
    },
    "geometry_zero_length": {
        "zh": "{what} {name} 长度为零（两端几乎重合），不会计数。请拖开一个端点。",
        "en": "{what} {name} has zero length (its two ends are on the same spot) and would count nothing. Drag one end away.",
    },
    "geometry_line_points": {
        "zh": "{what} {name} 必须正好有两个端点。",
        "en": "{what} {name} must have exactly two end points.",
    },
    "geometry_zone_points": {
        "zh": "{what} {name} 至少需要 3 个点。",
        "en": "{what} {name} needs at least 3 points.",
    },
    "geometry_flat": {
        "zh": "{what} {name} 面积几乎为零（点在一条线上）。请拖开各点。",
        "en": "{what} {name} has almost no area (its points are in a line). Spread the points.",
    },
    "camera_unknown": {"zh": "配置中没有摄像头 {camera}。", "en": "There is no camera {camera} in the configuration."},
    "camera_config_invalid": {
        "zh": "配置文件当前无效，请先在配置编辑器中修正：",
        "en": "The configuration file is not valid now; fix it in the configuration editor first:",
    },
    "camera_not_running": {
        "zh": "摄像头 {camera} 未在运行（已停用或视频分析未启动）。",
        "en": "Camera {camera} is not running (disabled, or video analysis did not start).",
    },
    "camera_restarting": {
        "zh": "摄像头 {camera} 的分析进程正在重启：{why}",
        "en": "Camera {camera}'s analysis is restarting: {why}",
    },
    "camera_no_answer": {
        "zh": "摄像头 {camera} 的分析进程未应答：{why}",
        "en": "Camera {camera}'s analysis did not answer: {why}",
    },
    "camera_offline": {
        "zh": "摄像头 {camera} 离线：{why}。检查网线、供电和视频地址。",
        "en": "Camera {camera} is offline: {why}. Check its cable, power and stream address.",
    },
    "camera_no_frame_yet": {
        "zh": "摄像头 {camera} 还没有画面，请稍候。",
        "en": "Camera {camera} has no picture yet; wait a moment.",
    },
    "camera_last_picture": {
        "zh": "显示的是 {age} 秒前的最后画面，仍可编辑。",
        "en": "Showing its last picture, {age} s old; you can still edit.",
    },
    "camera_path_not_in_file": {
        "zh": "{path} 不在此配置文件中，无法在此修改。",
        "en": "{path} is not in this configuration file; it cannot be edited here.",
    },
    "replay_busy": {"zh": "另一个回放正在进行，请稍后再试。", "en": "Another replay is running; try again in a moment."},
    "replay_nothing": {
        "zh": "摄像头 {camera} 还没有可回放的轨迹（刚启动或画面中无人）。",
        "en": "Camera {camera} has no tracks to replay yet (just started, or nobody was seen).",
    },
    "replay_done": {
        "zh": "已用最近 {seconds} 秒（{frames} 帧）的轨迹回放：",
        "en": "Replayed the tracks of the last {seconds} s ({frames} frames):",
    },
    "replay": {"zh": "用这条线回放最近几分钟", "en": "Replay the last minutes with this line"},
    "flip": {"zh": "反转方向", "en": "Flip direction"},
    "add_point": {"zh": "加点", "en": "Add point"},
    "remove_point": {"zh": "删点", "en": "Remove point"},
    "undo_edits": {"zh": "撤销改动", "en": "Undo changes"},
    "save_lines": {"zh": "保存线和区域", "en": "Save lines and zones"},
    "edited_line": {"zh": "编辑后的线", "en": "Edited line"},
    "saved_line": {"zh": "已保存的线", "en": "Saved line"},
    "counts_since": {"zh": "计数（自 {time} 起）", "en": "Counts (since {time})"},
    "direction_in": {"zh": "进", "en": "in"},
    "direction_out": {"zh": "出", "en": "out"},
    "drag_hint": {
        "zh": "拖动圆点修改位置；箭头指向“进”的方向。选中区域后可加点、删点。",
        "en": 'Drag the dots to move them; the arrow points the "in" direction. Select a zone to add or remove points.',
    },
    "unsaved": {"zh": "有未保存的改动", "en": "Unsaved changes"},
}
