"""Transports shared by several plugin kinds (monitors, disruptors, runners, preflight).

- :mod:`actors.common.ssh`: persistent paramiko SSH connections (TCP_NODELAY, host keys
  verified against known_hosts, reconnect with backoff);
- :mod:`actors.common.hosts`: hosts from an Ansible inventory or the profile, and SSH settings;
- :mod:`actors.common.nodeagent`: the node-side agent (``host-services`` watches with it, the
  ``process`` disruptor kills with it);
- :mod:`actors.common.cloud`: an openstacksdk connection and its API errors;
- :mod:`actors.common.docker_client` and :mod:`actors.common.power`: containers and BMC power.

What only monitors share (state tracking, summaries, their cadence) is the monitor kit,
:mod:`actors.monitors._kit`.
"""
