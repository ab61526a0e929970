"""Audit plugins (entry-point group ``osha.audits``): read-only checks of what a campaign's
faults left broken in the cloud. See :mod:`osha.audit` for the contract."""
