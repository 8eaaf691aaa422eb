"""The daemon: CLI, start-up wiring, lifecycle, MQTT uplink, health, systemd integration."""
