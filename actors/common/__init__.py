"""Transports and logic shared by monitors and disruptors.

- :mod:`actors.common.ssh`: persistent paramiko SSH connections (TCP_NODELAY, host keys
  verified against known_hosts, reconnect with backoff);
- :mod:`actors.common.state`: turns observations into ``monitor.state`` changes;
- :mod:`actors.common.aggregate`: per-interval summaries (``monitor.sample``/``metric``);
- :mod:`actors.common.hosts`: hosts from an Ansible inventory or the profile, and SSH settings;
- :mod:`actors.common.nodeagent`: the node-side streaming check of ``host-services``.
"""
