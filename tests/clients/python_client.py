"""A Python client generated from proto/ with grpcio-tools: creates and reads an organisation.

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
    files = sorted(glob.glob(os.path.join(proto_dir, "clientele", "v1", "*.proto")))
    code = protoc.main(
        ["grpc_tools.protoc", f"-I{proto_dir}", f"-I{well_known}",
         f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *files]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    sys.path.insert(0, out_dir)


def main() -> None:
    proto_dir, out_dir, address, token = sys.argv[1:5]
    generate(proto_dir, out_dir)
    from clientele.v1 import common_pb2, organisation_pb2, organisation_pb2_grpc

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
                    customer_id="PY-1",
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
            organisation_pb2.GetOrganisationRequest(customer_id="py-1"), metadata=metadata
        ).organisation
        assert found == created, (found, created)

        try:
            stub.CreateOrganisation(
                organisation_pb2.CreateOrganisationRequest(
                    organisation=organisation_pb2.Organisation(customer_id="PY-2", name="x")
                ),
                metadata=metadata,
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert "organisation.country" in error.details(), error.details()
        else:
            raise AssertionError("a missing country was accepted")
    print("python client: ok")


if __name__ == "__main__":
    main()
