"""Simulated field devices: Modbus servers, a DL/T 645 meter, the site's process model."""
