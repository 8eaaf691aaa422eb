"""The technician's web page (docs/web.md): live values, alarms, health — served by the agent."""
