"""Real-component helpers for the test suite (mosquitto broker, MQTT collector, certificates)."""
