"""Field protocols: Modbus TCP/RTU polling, DL/T 645-2007 meters, device profiles."""
