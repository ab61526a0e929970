"""An ML2 mechanism driver that binds every port on every host.

Why a fake: the lab's nova-compute runs the fake virt driver, so there is no
dataplane (no OVS, no OVN, no L2 agent) to bind ports to. Neutron ships only
test drivers that bind magic host names, so without this driver every server
would fail with a binding error. Everything else in neutron stays real.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class NoopMechanismDriver(api.MechanismDriver):
    """Binds the first segment offered, as an OVS port, and reports it ACTIVE."""

    def initialize(self) -> None:
        pass

    def bind_port(self, context: api.PortContext) -> None:
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
