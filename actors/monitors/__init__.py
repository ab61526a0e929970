"""Monitors: ``openstack-api``, ``host-services``, ``nagios`` and ``vm-ping``."""
