"""Hardware-in-the-loop rig: simulated site, fault injection, scenario runner."""
