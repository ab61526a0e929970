"""Built-in test plugins: ``ticker`` (monitor), ``crasher`` (runner), ``noop`` (disruptor), and
``marker`` (a disruptor whose fault is a file, and the monitor that watches those files).

They exercise the core without a cloud: the supervision tests crash and hang them on command
(``test.crash``, ``test.hang``), and the core benchmark floods the ticker (``test.flood``).
Those commands are declared in :mod:`actors.testing.commands`, not in core's codec.
"""
