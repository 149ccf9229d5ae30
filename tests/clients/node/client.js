// A Node client of Clientele, its types loaded from proto/ and third_party/googleapis with
// @grpc/proto-loader: creates an organisation, a customer, a group, a grant and two tickets, streams
// ListTickets, and decodes the rich details of errors (BadRequest, PreconditionFailure,
// ErrorInfo) from the `grpc-status-details-bin` trailer.
//
// Usage: node client.js REPOSITORY ADDRESS TOKEN

"use strict";

const path = require("node:path");
const assert = require("node:assert/strict");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [repository, address, token] = process.argv.slice(2);
const includeDirs = [
  path.join(repository, "proto"),
  path.join(repository, "third_party", "googleapis"),
];
const files = [
  "clientele/v1/organisation.proto",
  "clientele/v1/customer.proto",
  "clientele/v1/group.proto",
  "clientele/v1/ticket.proto",
  "clientele/v1/permission.proto",
  "google/rpc/status.proto",
  "google/rpc/error_details.proto",
];
const options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs };
const definition = protoLoader.loadSync(files, options);
const loaded = grpc.loadPackageDefinition(definition);
const v1 = loaded.clientele.v1;

// Message types for decoding details: protobufjs, as proto-loader built them.
const protobuf = require("protobufjs");
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => {
  for (const dir of includeDirs) {
    const candidate = path.join(dir, target);
    if (require("node:fs").existsSync(candidate)) return candidate;
  }
  return target;
};
root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
const Status = root.lookupType("google.rpc.Status");

function call(client, method, request) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return new Promise((resolve, reject) =>
    client[method](request, metadata, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

// The detail of `typeName` (e.g. "google.rpc.BadRequest") in the error's google.rpc.Status.
function detail(error, typeName) {
  const [bytes] = error.metadata.get("grpc-status-details-bin");
  assert.ok(bytes, "a grpc-status-details-bin trailer");
  const status = Status.decode(bytes);
  assert.equal(status.code, error.code);
  // google.protobuf.Any is one of protobufjs' built-in types, its fields named as in the proto.
  const packed = status.details.find((any) => any.type_url.endsWith(`/${typeName}`));
  assert.ok(packed, `a ${typeName} in ${JSON.stringify(status)}`);
  return root.lookupType(typeName).decode(packed.value);
}

async function refused(promise, code) {
  try {
    await promise;
  } catch (error) {
    assert.equal(error.code, code, `${error.code} ${error.details}`);
    return error;
  }
  assert.fail(`answered, expected code ${code}`);
}

async function main() {
  const credentials = grpc.credentials.createInsecure();
  const organisations = new v1.OrganisationService(address, credentials);
  const customers = new v1.CustomerService(address, credentials);
  const groups = new v1.GroupService(address, credentials);
  const tickets = new v1.TicketService(address, credentials);
  const permissions = new v1.PermissionService(address, credentials);

  const { organisation } = await call(organisations, "CreateOrganisation", {
    organisation: { code: "NODE-1", name: "Made in Node", country: "nl", email_domains: ["node.example"] },
    request_id: "node-1",
  });
  assert.ok(organisation.id);
  assert.equal(organisation.country, "NL");
  assert.equal(organisation.validity, "VALIDITY_VALID");

  const { customer } = await call(customers, "CreateCustomer", {
    customer: { email: "Ada@Node.example", first_name: "Ada", last_name: "Lovelace", organisation_id: organisation.id },
    request_id: "node-customer-1",
  });
  assert.ok(customer.id);
  assert.equal(customer.organisation_id, organisation.id);

  const { group } = await call(groups, "CreateGroup", { group: { name: "node-support" } });
  await call(permissions, "GrantPermission", {
    grant: { subject: { customer_id: customer.id }, group_id: group.id, level: "PERMISSION_LEVEL_RW" },
  });
  for (const title of ["First from Node", "Second from Node"]) {
    await call(tickets, "CreateTicket", { ticket: { title, group_id: group.id, customer_id: customer.id } });
  }

  // The server streams the list; a generated client reads it as a stream of messages.
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const listed = [];
  await new Promise((resolve, reject) => {
    const stream = tickets.ListTickets({ customer_id: customer.id }, metadata);
    stream.on("data", (message) => listed.push(message.ticket.title));
    stream.on("error", reject);
    stream.on("end", resolve);
  });
  assert.deepEqual(listed.sort(), ["First from Node", "Second from Node"]);

  const invalid = await refused(
    call(organisations, "CreateOrganisation", { organisation: { code: "NODE-2", name: "x" } }),
    grpc.status.INVALID_ARGUMENT,
  );
  const badRequest = detail(invalid, "google.rpc.BadRequest");
  const fields = badRequest.fieldViolations.map((violation) => violation.field);
  assert.ok(fields.includes("organisation.country"), fields.join(", "));
  const info = detail(invalid, "google.rpc.ErrorInfo");
  assert.ok(info.reason && info.domain, JSON.stringify(info));

  const blocked = await refused(
    call(organisations, "ApplyDomainAssignment", { id: organisation.id }),
    grpc.status.FAILED_PRECONDITION,
  );
  const failure = detail(blocked, "google.rpc.PreconditionFailure");
  assert.equal(failure.violations[0].type, "DOMAIN_ASSIGNMENT_OFF");
  assert.equal(failure.violations[0].subject, organisation.id);

  for (const client of [organisations, customers, groups, tickets, permissions]) client.close();
  console.log("node client: ok");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
