"""Fleet health view: subscribes to many gateways' health and status."""
