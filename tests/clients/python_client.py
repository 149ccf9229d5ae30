"""A Python client generated from proto/ and third_party/googleapis with grpcio-tools: creates
and reads an organisation, creates a customer, a group, a grant and two tickets, streams
ListTickets, and decodes the rich details of errors (BadRequest,
PreconditionFailure, ErrorInfo) from the `grpc-status-details-bin` trailer.

Usage: python_client.py PROTO_DIR OUT_DIR ADDRESS TOKEN
"""

import glob
import os
import sys

import grpc
import grpc_tools
from grpc_tools import protoc


def generate(proto_dir: str, out_dir: str) -> None:
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    googleapis = os.path.join(proto_dir, os.pardir, "third_party", "googleapis")
    files = sorted(glob.glob(os.path.join(proto_dir, "clientele", "v1", "*.proto")))
    # Every googleapis file the contract imports: error details, field behaviours, dates.
    google = sorted(glob.glob(os.path.join(googleapis, "google", "*", "*.proto")))
    code = protoc.main(
        ["grpc_tools.protoc", f"-I{proto_dir}", f"-I{googleapis}", f"-I{well_known}",
         f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *files, *google]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    sys.path.insert(0, out_dir)


def detail(error: grpc.RpcError, kind):
    """The detail of type `kind` in the error's google.rpc.Status."""
    from google.rpc import status_pb2

    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            assert status.code == error.code().value[0], (status.code, error.code())
            for packed in status.details:
                if packed.Is(kind.DESCRIPTOR):
                    found = kind()
                    packed.Unpack(found)
                    return found
            raise AssertionError(f"no {kind.DESCRIPTOR.full_name} in {status}")
    raise AssertionError("no grpc-status-details-bin trailer")


def main() -> None:
    proto_dir, out_dir, address, token = sys.argv[1:5]
    generate(proto_dir, out_dir)
    from clientele.v1 import (
        common_pb2,
        customer_pb2,
        customer_pb2_grpc,
        group_pb2,
        group_pb2_grpc,
        organisation_pb2,
        organisation_pb2_grpc,
        permission_pb2,
        permission_pb2_grpc,
        sla_pb2,
        sla_pb2_grpc,
        ticket_pb2,
        ticket_pb2_grpc,
    )
    from google.rpc import error_details_pb2

    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(address) as channel:
        try:
            organisation_pb2_grpc.OrganisationServiceStub(channel).ListOrganisations(
                organisation_pb2.ListOrganisationsRequest()
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
        else:
            raise AssertionError("a call without a token was answered")

        stub = organisation_pb2_grpc.OrganisationServiceStub(channel)
        created = stub.CreateOrganisation(
            organisation_pb2.CreateOrganisationRequest(
                organisation=organisation_pb2.Organisation(
                    code="PY-1",
                    name="Made in Python",
                    country="fr",
                    email_domains=["Python.example"],
                    custom_fields={"source": "python"},
                ),
                request_id="python-1",
            ),
            metadata=metadata,
        ).organisation
        assert created.id, created
        assert created.country == "FR", created.country
        assert list(created.email_domains) == ["python.example"]
        assert created.validity == common_pb2.VALIDITY_VALID

        found = stub.GetOrganisation(
            organisation_pb2.GetOrganisationRequest(code="py-1"), metadata=metadata
        ).organisation
        assert found == created, (found, created)

        customer = customer_pb2_grpc.CustomerServiceStub(channel).CreateCustomer(
            customer_pb2.CreateCustomerRequest(
                customer=customer_pb2.Customer(
                    email="grace@python.example", first_name="Grace", last_name="Hopper",
                    organisation_id=created.id,
                ),
                request_id="python-customer-1",
            ),
            metadata=metadata,
        ).customer
        assert customer.organisation_id == created.id, customer
        group = group_pb2_grpc.GroupServiceStub(channel).CreateGroup(
            group_pb2.CreateGroupRequest(group=group_pb2.Group(name="python-support")),
            metadata=metadata,
        ).group
        permission_pb2_grpc.PermissionServiceStub(channel).GrantPermission(
            permission_pb2.GrantPermissionRequest(
                grant=permission_pb2.Grant(
                    subject=permission_pb2.Subject(customer_id=customer.id),
                    group_id=group.id,
                    level=permission_pb2.PERMISSION_LEVEL_RW,
                )
            ),
            metadata=metadata,
        )
        tickets = ticket_pb2_grpc.TicketServiceStub(channel)
        for title in ("First from Python", "Second from Python"):
            tickets.CreateTicket(
                ticket_pb2.CreateTicketRequest(
                    ticket=ticket_pb2.Ticket(title=title, group_id=group.id, customer_id=customer.id)
                ),
                metadata=metadata,
            )
        # A server-streaming call: the generated stub returns an iterator of messages.
        listed = [
            message.ticket.title
            for message in tickets.ListTickets(
                ticket_pb2.ListTicketsRequest(customer_id=customer.id), metadata=metadata
            )
        ]
        assert sorted(listed) == ["First from Python", "Second from Python"], listed

        try:
            stub.CreateOrganisation(
                organisation_pb2.CreateOrganisationRequest(
                    organisation=organisation_pb2.Organisation(code="PY-2", name="x")
                ),
                metadata=metadata,
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert "organisation.country" in error.details(), error.details()
            bad_request = detail(error, error_details_pb2.BadRequest)
            fields = [v.field for v in bad_request.field_violations]
            assert "organisation.country" in fields, fields
            info = detail(error, error_details_pb2.ErrorInfo)
            assert info.domain and info.reason, info
        else:
            raise AssertionError("a missing country was accepted")

        try:
            stub.ApplyDomainAssignment(
                organisation_pb2.ApplyDomainAssignmentRequest(id=created.id), metadata=metadata
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
            failure = detail(error, error_details_pb2.PreconditionFailure)
            violation = failure.violations[0]
            assert violation.type == "DOMAIN_ASSIGNMENT_OFF", violation
            assert violation.subject == created.id, violation
        else:
            raise AssertionError("domain assignment ran with domain_assignment off")

        # Errors whose lists or echoed input could grow without bound reach Python whole,
        # under its 8 KiB limit on metadata.
        for index in range(118):
            tickets.CreateTicket(
                ticket_pb2.CreateTicketRequest(
                    ticket=ticket_pb2.Ticket(
                        title=f"Open {index}", group_id=group.id, customer_id=customer.id
                    )
                ),
                metadata=metadata,
            )
        customers = customer_pb2_grpc.CustomerServiceStub(channel)
        etag = customers.GetCustomer(
            customer_pb2.GetCustomerRequest(id=customer.id), metadata=metadata
        ).customer.etag
        try:
            customers.DeactivateCustomer(
                customer_pb2.DeactivateCustomerRequest(id=customer.id, etag=etag),
                metadata=metadata,
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
            failure = detail(error, error_details_pb2.PreconditionFailure)
            more = failure.violations[-1]
            assert more.type == "MORE", more
            assert len(failure.violations) - 1 + int(more.description.split()[1]) == 120, failure
        else:
            raise AssertionError("a customer with open tickets was deactivated")
        try:
            stub.UpdateOrganisation(
                organisation_pb2.UpdateOrganisationRequest(
                    organisation=organisation_pb2.Organisation(id=created.id, etag=created.etag),
                    update_mask={"paths": ["x" * 100_000]},
                ),
                metadata=metadata,
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            detail(error, error_details_pb2.BadRequest)
        else:
            raise AssertionError("an unknown mask path was accepted")
        try:
            sla_pb2_grpc.SlaServiceStub(channel).CreateCalendar(
                sla_pb2.CreateCalendarRequest(
                    calendar=sla_pb2.Calendar(name="big", time_zone="Z" * (1024 * 1024))
                ),
                metadata=metadata,
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            detail(error, error_details_pb2.BadRequest)
        else:
            raise AssertionError("a time zone of 1 MiB was accepted")

    # Requests compressed with gzip are taken, and answers come back compressed.
    with grpc.insecure_channel(address, compression=grpc.Compression.Gzip) as channel:
        compressed = group_pb2_grpc.GroupServiceStub(channel).CreateGroup(
            group_pb2.CreateGroupRequest(group=group_pb2.Group(name="python-gzip")),
            metadata=metadata,
        ).group
        assert compressed.name == "python-gzip", compressed
    print("python client: ok")


if __name__ == "__main__":
    main()
