"""citizen-requests: the lifecycle of citizens' service requests, routed to the OPDs, under SLAs.

    core/       the rules (lifecycle, routing, SLAs, duplicates, statistics, the ledger, Open311)
    adapters/   the Faust worker and its metrics
    sim/        simulated citizens and OPD staff
    config.py   the routing/SLA file and the environment's knobs
    __main__.py `python -m citizen_requests`: the worker
"""
