"""What ties the core to the outside: the Faust worker (topics, tables, agents, timers) and metrics."""
