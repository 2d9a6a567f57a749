"""emstrack's pytest plugin (entry point ``pytest11``): regression checks of optimization KPIs."""
