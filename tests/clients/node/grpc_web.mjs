// A gRPC-Web client of Clientele over HTTP/1.1: Connect's gRPC-Web transport for Node, with
// the services described at run time by the contract's descriptor set (no generated code).
// Creates a group and a ticket, streams ListTickets (server streaming over gRPC-Web), and
// reads an error's code. Run by tests/it/transport.rs.
//
// Usage: node grpc_web.mjs DESCRIPTOR_SET BASE_URL TOKEN
import { readFileSync } from "node:fs";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const [descriptorPath, baseUrl, token] = process.argv.slice(2);
const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(descriptorPath)),
);
const service = (name) => {
  const found = registry.getService(name);
  if (!found) throw new Error(`no service ${name} in the descriptor set`);
  return found;
};
const transport = createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
const headers = { authorization: `Bearer ${token}` };

const groups = createClient(service("clientele.v1.GroupService"), transport);
const customers = createClient(service("clientele.v1.CustomerService"), transport);
const tickets = createClient(service("clientele.v1.TicketService"), transport);
const permissions = createClient(service("clientele.v1.PermissionService"), transport);

const { group } = await groups.createGroup({ group: { name: "grpc-web" } }, { headers });
if (group.name !== "grpc-web" || !group.id) throw new Error(`created ${JSON.stringify(group)}`);
const { customer } = await customers.createCustomer(
  { customer: { email: "web@grpc-web.example", lastName: "Web" } },
  { headers },
);
const PERMISSION_LEVEL_RW = 3;
await permissions.grantPermission(
  {
    grant: {
      subject: { subject: { case: "customerId", value: customer.id } },
      groupId: group.id,
      level: PERMISSION_LEVEL_RW,
    },
  },
  { headers },
);
for (const title of ["First over gRPC-Web", "Second over gRPC-Web"]) {
  await tickets.createTicket(
    { ticket: { title, groupId: group.id, customerId: customer.id } },
    { headers },
  );
}
const titles = [];
for await (const item of tickets.listTickets({ customerId: customer.id }, { headers })) {
  titles.push(item.ticket.title);
}
titles.sort();
if (JSON.stringify(titles) !== JSON.stringify(["First over gRPC-Web", "Second over gRPC-Web"])) {
  throw new Error(`streamed ${JSON.stringify(titles)}`);
}
try {
  await groups.getGroup({ key: { case: "id", value: "00000000-0000-7000-8000-000000000000" } }, { headers });
  throw new Error("a missing group was found");
} catch (error) {
  const connect = ConnectError.from(error);
  if (connect.code !== Code.NotFound) throw error;
}
console.log("grpc-web client: ok");
