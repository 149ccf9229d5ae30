//! The transport around the services: bad bytes, sizes of errors and messages, deadlines,
//! limits and rates, compression, page tokens; a fuzz of every RPC.

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut};
use clientele::proto::v1 as pb;
use prost::Message;
use tokio_stream::StreamExt;
use tonic::{
    Code, Request, Status,
    codec::{CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};
use tonic_types::StatusExt;

use crate::support::*;

/// Sends and receives bodies as they are, to put bytes on the wire no client would.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let length = buf.remaining();
        Ok(Some(buf.copy_to_bytes(length).to_vec()))
    }
}

/// How a method streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Unary,
    ServerStreaming,
    ClientStreaming,
}

/// Every method of the API with its shape.
fn methods() -> Vec<(String, Shape)> {
    let set = prost_types::FileDescriptorSet::decode(clientele::proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                let shape = match (method.client_streaming(), method.server_streaming()) {
                    (true, _) => Shape::ClientStreaming,
                    (false, true) => Shape::ServerStreaming,
                    (false, false) => Shape::Unary,
                };
                methods.push((
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    shape,
                ));
            }
        }
    }
    // Health is served beside them, from tonic-health's own code.
    methods.push(("/grpc.health.v1.Health/Check".into(), Shape::Unary));
    methods.push((
        "/grpc.health.v1.Health/Watch".into(),
        Shape::ServerStreaming,
    ));
    methods
}

/// Calls `path` with `body` as it is; what the server answered (for a stream, how it ended,
/// read for at most a moment).
pub(crate) async fn call_raw(
    channel: Authed,
    path: &str,
    shape: Shape,
    body: Vec<u8>,
) -> Result<(), Status> {
    call_raw_with(channel, path, shape, body, |_| {}).await
}

async fn call_raw_with(
    channel: Authed,
    path: &str,
    shape: Shape,
    body: Vec<u8>,
    adjust: impl FnOnce(&mut tonic::metadata::MetadataMap),
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let path = http::uri::PathAndQuery::try_from(path.to_owned()).expect("path");
    match shape {
        Shape::Unary => {
            let mut request = Request::new(body);
            adjust(request.metadata_mut());
            grpc.unary(request, path, Raw).await.map(|_| ())
        }
        Shape::ServerStreaming => {
            let mut request = Request::new(body);
            adjust(request.metadata_mut());
            let mut stream = grpc
                .server_streaming(request, path, Raw)
                .await?
                .into_inner();
            // Watches run until told to stop: what they answer first is what counts here.
            let read = tokio::time::timeout(Duration::from_millis(300), async {
                while let Some(message) = stream.next().await {
                    message?;
                }
                Ok::<_, Status>(())
            });
            read.await.unwrap_or(Ok(()))
        }
        Shape::ClientStreaming => {
            let mut request = Request::new(tokio_stream::iter(vec![body]));
            adjust(request.metadata_mut());
            grpc.client_streaming(request, path, Raw).await.map(|_| ())
        }
    }
}

/// The `grpc-status` the server answers a unary call of `path` with `body`, sent with
/// `grpc-timeout: timeout` over a bare HTTP/2 connection that enforces nothing itself.
async fn h2_status(
    addr: std::net::SocketAddr,
    path: &str,
    secret: &str,
    timeout: &str,
    body: &[u8],
) -> i32 {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(body);
    h2_call(addr, path, secret, &[("grpc-timeout", timeout)], framed).await
}

/// The `grpc-status` the server answers to `framed` (the request body exactly as given, gRPC
/// framing and all) with `headers`, over a bare HTTP/2 connection.
async fn h2_call(
    addr: std::net::SocketAddr,
    path: &str,
    secret: &str,
    headers: &[(&str, &str)],
    framed: Vec<u8>,
) -> i32 {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let mut request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {secret}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, mut send) = client
        .send_request(request.body(()).expect("request"), false)
        .expect("send");
    // The server may have answered already (a deadline that passed on arrival).
    let _ = send.send_data(framed.into(), true);
    let response = response.await.expect("response");
    let code = |headers: &http::HeaderMap| {
        headers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    if let Some(code) = code(response.headers()) {
        return code;
    }
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        data.expect("data");
    }
    let trailers = body
        .trailers()
        .await
        .expect("trailers")
        .expect("trailers sent");
    code(&trailers).expect("grpc-status")
}

/// What an error takes in the trailers: its message and its details as base64.
fn trailer_size(status: &Status) -> usize {
    status.message().len() + status.details().len().div_ceil(3) * 4
}

/// A deterministic generator of bytes (xorshift), so that a failure can be replayed.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// Random bytes.
    fn noise(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next() as u8).collect()
    }

    /// Something shaped like a protobuf message: fields 1 to 12 of every wire type, with
    /// text that holds NULs or broken UTF-8, nested messages and varints of every size.
    fn message(&mut self, depth: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..self.below(6) {
            let field = 1 + self.below(12);
            let wire = [0, 1, 2, 2, 2, 5][self.below(6) as usize];
            prost::encoding::encode_varint((field << 3) | wire, &mut out);
            match wire {
                0 => prost::encoding::encode_varint(self.next() >> self.below(64), &mut out),
                1 => out.extend_from_slice(&self.next().to_le_bytes()),
                5 => out.extend_from_slice(&(self.next() as u32).to_le_bytes()),
                _ => {
                    let payload = match self.below(5) {
                        0 if depth < 3 => self.message(depth + 1),
                        1 => b"a\0b".to_vec(),
                        2 => vec![0xff, 0xfe, b'x'],
                        3 => format!("{}", uuid::Uuid::now_v7()).into_bytes(),
                        _ => {
                            let length = self.below(24) as usize;
                            self.noise(length)
                        }
                    };
                    prost::encoding::encode_varint(payload.len() as u64, &mut out);
                    out.extend_from_slice(&payload);
                }
            }
        }
        // Now and then a message cut short or with noise after it.
        match self.below(8) {
            0 if !out.is_empty() => {
                let cut = self.below(out.len() as u64) as usize;
                out.truncate(cut);
            }
            1 => {
                let length = self.below(8) as usize;
                out.extend(self.noise(length));
            }
            _ => {}
        }
        out
    }
}

backend_tests! {
    async fn bytes_that_are_not_a_message_of_the_method_are_invalid_argument(server) {
        let admin = server.authed(Some(&server.admin_secret));
        // A field of wire type 7, which does not exist.
        let error = call_raw(admin.clone(), "/clientele.v1.GroupService/GetGroup", Shape::Unary, vec![0x07, 0x00])
            .await
            .expect_err("not a message");
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
        assert_eq!(error.get_details_error_info().expect("error info").reason, "MALFORMED_MESSAGE");
        // Broken UTF-8 in a text field: the violation names the field.
        let mut body = Vec::new();
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut body);
        let customer = [0x2a, 0x02, 0xff, 0xfe]; // first_name = 5
        prost::encoding::encode_varint(customer.len() as u64, &mut body);
        body.extend_from_slice(&customer);
        let error = call_raw(admin.clone(), "/clientele.v1.CustomerService/CreateCustomer", Shape::Unary, body)
            .await
            .expect_err("broken UTF-8");
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
        let violations = error.get_details_bad_request().expect("bad request").field_violations;
        assert_eq!(violations[0].field, "customer.first_name", "{violations:?}");
        // The same in the health service, which is not ours.
        let error = call_raw(admin.clone(), "/grpc.health.v1.Health/Check", Shape::Unary, vec![0x07, 0x00])
            .await
            .expect_err("not a message");
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
        // And in a client stream.
        let error = call_raw(admin, "/clientele.v1.CustomerService/ImportCustomers", Shape::ClientStreaming, vec![0x07, 0x00])
            .await
            .expect_err("not a message");
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    }

    async fn bodies_not_framed_as_grpc_requires_are_invalid_argument(server) {
        let path = "/clientele.v1.GroupService/ListGroups";
        let secret = &server.admin_secret;
        let message = pb::ListGroupsRequest { page_size: 3, ..Default::default() }.encode_to_vec();
        let frame = |flag: u8, length: u32, content: &[u8]| {
            let mut framed = vec![flag];
            framed.extend_from_slice(&length.to_be_bytes());
            framed.extend_from_slice(content);
            framed
        };
        let none: &[(&str, &str)] = &[];
        let cases = [
            ("a frame cut short", none, frame(0, 100, &message)),
            ("a compression flag of 2", none, frame(2, message.len() as u32, &message)),
            ("compressed without an encoding", none, frame(1, message.len() as u32, &message)),
            ("gzip that is not gzip", &[("grpc-encoding", "gzip")], frame(1, 4, b"junk")),
            ("zstd that is not zstd", &[("grpc-encoding", "zstd")], frame(1, 4, b"junk")),
        ];
        for (case, headers, framed) in cases {
            let status = h2_call(server.addr, path, secret, headers, framed).await;
            assert_eq!(status, Code::InvalidArgument as i32, "{case}");
        }
        let status = h2_call(server.addr, path, secret, &[], frame(0, message.len() as u32, &message)).await;
        assert_eq!(status, Code::Ok as i32, "the same message framed right");
    }

    async fn a_nul_in_any_text_field_is_invalid_argument_before_the_database_sees_it(server) {
        let before = server.snapshot().await;
        let mut groups = server.groups();
        let error = groups
            .get_group(pb::GetGroupRequest { key: Some(pb::get_group_request::Key::Name("a\0b".into())) })
            .await
            .expect_err("NUL");
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
        let violations = error.get_details_bad_request().expect("bad request").field_violations;
        assert_eq!(violations[0].field, "name");
        let mut customers = server.customers();
        let error = customers
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    email: "nul@transport.example".into(),
                    last_name: "Nul".into(),
                    custom_fields: [("note".to_owned(), "x\0y".to_owned())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect_err("NUL in a custom field");
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
        let violations = error.get_details_bad_request().expect("bad request").field_violations;
        assert_eq!(violations[0].field, "customer.custom_fields[0].value");
        assert_eq!(server.snapshot().await, before, "nothing was written");
    }

    async fn a_page_token_edited_or_made_up_by_a_client_is_invalid_argument(server) {
        for name in ["paged-a", "paged-b", "paged-c"] {
            server.group(name).await;
        }
        let mut groups = server.groups();
        let first = groups
            .list_groups(pb::ListGroupsRequest { page_size: 1, ..Default::default() })
            .await
            .expect("first page")
            .into_inner();
        let token = first.next_page_token;
        assert!(!token.is_empty());
        groups
            .list_groups(pb::ListGroupsRequest { page_size: 1, page_token: token.clone(), ..Default::default() })
            .await
            .expect("the token as issued resumes");
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, signature) = token.split_once('.').expect("signed");
        let cursor = String::from_utf8(engine.decode(payload).unwrap()).unwrap();
        // The cursor edited to hold a NUL (the name it resumes after), signature kept.
        let edited = cursor.replacen("paged", "pa\\u0000ged", 1);
        assert_ne!(edited, cursor, "{cursor}");
        let forged = [
            format!("{}.{signature}", engine.encode(edited.as_bytes())),
            engine.encode(edited.as_bytes()),
            engine.encode(cursor.as_bytes()),
            format!("{payload}.{}", engine.encode([0u8; 16])),
        ];
        for token in forged {
            let error = groups
                .list_groups(pb::ListGroupsRequest { page_size: 1, page_token: token.clone(), ..Default::default() })
                .await
                .expect_err("forged");
            assert_eq!(error.code(), Code::InvalidArgument, "{token}: {error:?}");
        }
    }

    async fn errors_stay_small_enough_for_every_client_whatever_the_input(server) {
        // A customer with 120 open tickets cannot be deactivated: the blocking tickets are
        // listed up to a bound, with how many more there are.
        let desk = server.desk("sizes").await;
        for index in 0..120 {
            desk.create(desk.ticket(&format!("open {index}"))).await;
        }
        let error = server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest {
                id: desk.customer.id.clone(),
                etag: server.customer_etag(&desk.customer.id).await,
                ..Default::default()
            })
            .await
            .expect_err("open tickets");
        assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
        assert!(trailer_size(&error) < 8 * 1024, "{} bytes", trailer_size(&error));
        let violations = error.get_details_precondition_failure().expect("precondition failure").violations;
        let last = violations.last().expect("violations");
        assert!(violations.len() < 121 && last.description.contains("more"), "{last:?}");
        let more: usize = last.description.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(violations.len() - 1 + more, 120, "every ticket is counted");

        // A mask path of 100,000 characters.
        let organisation = server.organisation("sizes-mask", &[]).await;
        let error = server
            .organisations()
            .update_organisation(pb::UpdateOrganisationRequest {
                organisation: Some(pb::Organisation { id: organisation.id.clone(), etag: organisation.etag.clone(), ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["x".repeat(100_000)] }),
            })
            .await
            .expect_err("unknown path");
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(trailer_size(&error) < 8 * 1024, "{} bytes", trailer_size(&error));

        // A time zone of 1 MiB, and five hundred invalid custom fields.
        let error = server
            .slas()
            .create_calendar(pb::CreateCalendarRequest {
                calendar: Some(pb::Calendar { name: "big".into(), time_zone: "Z".repeat(1024 * 1024), ..Default::default() }),
                ..Default::default()
            })
            .await
            .expect_err("no such zone");
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(trailer_size(&error) < 8 * 1024, "{} bytes", trailer_size(&error));
        let error = server
            .customers()
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    email: "many@sizes.example".into(),
                    last_name: "Many".into(),
                    custom_fields: (0..500).map(|i| (format!("{}{i}", "k".repeat(300)), "v".repeat(2000))).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect_err("too many, too long");
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(trailer_size(&error) < 8 * 1024, "{} bytes", trailer_size(&error));
    }

    async fn a_deadline_ends_a_unary_call_and_a_stream_with_deadline_exceeded(server) {
        // Sent over bare HTTP/2: tonic's, grpcurl's and Python's clients each end a call at its
        // deadline themselves, hiding what the server answers.
        let status = h2_status(
            server.addr,
            "/clientele.v1.GroupService/ListGroups",
            &server.admin_secret,
            "1u",
            &pb::ListGroupsRequest::default().encode_to_vec(),
        )
        .await;
        assert_eq!(status, Code::DeadlineExceeded as i32);
        let status = h2_status(
            server.addr,
            "/clientele.v1.GroupService/ListGroups",
            &server.admin_secret,
            "10S",
            &pb::ListGroupsRequest::default().encode_to_vec(),
        )
        .await;
        assert_eq!(status, Code::Ok as i32, "within its deadline");

        let mut request = Request::new(pb::WatchEscalationsRequest::default());
        request.set_timeout(Duration::from_secs(1));
        let started = Instant::now();
        let mut stream = server.tickets().watch_escalations(request).await.expect("watch").into_inner();
        let ended = tokio::time::timeout(PATIENCE, async {
            loop {
                match stream.next().await {
                    Some(Ok(_)) => continue,
                    Some(Err(status)) => break Some(status),
                    None => break None,
                }
            }
        })
        .await
        .expect("the stream ends");
        let status = ended.expect("ends with an error, not OK");
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");
    }

    async fn every_rpc_answers_random_and_mangled_bodies_without_internal_or_unknown(server) {
        let admin = server.authed(Some(&server.admin_secret));
        let seed = 0x5eed_0000_u64 ^ u64::from(server.addr.port());
        let mut bytes = Bytes(seed | 1);
        let mut calls = 0;
        for (path, shape) in methods() {
            let mut last = Vec::new();
            for round in 0..12 {
                let body = match round % 4 {
                    0 => {
                        let length = bytes.below(40) as usize;
                        bytes.noise(length)
                    }
                    // The last message mutated: a byte flipped, one inserted, or cut short.
                    3 if !last.is_empty() => {
                        let mut mutated = last.clone();
                        let at = bytes.below(mutated.len() as u64) as usize;
                        match bytes.below(3) {
                            0 => mutated[at] ^= 1 << bytes.below(8),
                            1 => mutated.insert(at, bytes.next() as u8),
                            _ => mutated.truncate(at),
                        }
                        mutated
                    }
                    _ => {
                        last = bytes.message(0);
                        last.clone()
                    }
                };
                let shown = body.clone();
                let outcome = call_raw(admin.clone(), &path, shape, body).await;
                calls += 1;
                if let Err(status) = outcome {
                    assert!(
                        !matches!(status.code(), Code::Internal | Code::Unknown),
                        "{path} with {shown:02x?} (seed {seed:#x}): {status:?}"
                    );
                    assert!(trailer_size(&status) < 8 * 1024, "{path}: {} bytes", trailer_size(&status));
                }
            }
        }
        assert!(calls > 500, "{calls} calls");
        let health = server.health().check(tonic_health::pb::HealthCheckRequest::default()).await.expect("alive");
        assert_eq!(health.into_inner().status, 1, "still serving");
        server.group("after-the-fuzz").await;
    }
}

mod limits {
    use super::*;

    backend_tests! {
        async fn compressed_requests_are_taken_and_answers_compressed_as_the_client_accepts(server) {
            for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
                let mut groups = pb::group_service_client::GroupServiceClient::new(server.authed(Some(&server.admin_secret)))
                    .send_compressed(encoding)
                    .accept_compressed(encoding);
                let name = format!("compressed-{encoding:?}");
                let created = groups
                    .create_group(pb::CreateGroupRequest { group: Some(pb::Group { name: name.clone(), ..Default::default() }), ..Default::default() })
                    .await
                    .expect("create");
                assert_eq!(
                    created.metadata().get("grpc-encoding").and_then(|v| v.to_str().ok()),
                    Some(encoding_name(encoding)),
                    "the answer is compressed as accepted"
                );
                assert_eq!(created.into_inner().group.expect("group").name, name);
            }
        }
    }

    fn encoding_name(encoding: CompressionEncoding) -> &'static str {
        match encoding {
            CompressionEncoding::Gzip => "gzip",
            CompressionEncoding::Zstd => "zstd",
            _ => "other",
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_carries_no_more_calls_at_once_than_configured() {
        let Some(server) = TestServer::start_with(Backend::Sqlite, |config| {
            config.limits.max_concurrent_streams = Some(1);
        })
        .await
        else {
            return;
        };
        // One connection: a watch takes its one stream.
        let channel = Channel::from_shared(format!("http://{}", server.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let bearer = Bearer::new(Some(&server.admin_secret));
        let mut tickets = pb::ticket_service_client::TicketServiceClient::with_interceptor(
            channel.clone(),
            bearer.clone(),
        );
        let watch = tickets
            .watch_escalations(pb::WatchEscalationsRequest::default())
            .await
            .expect("watch")
            .into_inner();
        let mut groups =
            pb::group_service_client::GroupServiceClient::with_interceptor(channel, bearer);
        let waiting = tokio::time::timeout(
            Duration::from_millis(500),
            groups.list_groups(pb::ListGroupsRequest::default()),
        )
        .await;
        assert!(
            waiting.is_err(),
            "a second call ran beside the watch on one connection: {waiting:?}"
        );
        drop(watch);
        groups
            .list_groups(pb::ListGroupsRequest::default())
            .await
            .expect("once the watch is gone");
        // Other connections are not limited by it.
        server
            .groups()
            .list_groups(pb::ListGroupsRequest::default())
            .await
            .expect("another connection");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_over_the_configured_size_is_resource_exhausted() {
        let Some(server) = TestServer::start_with(Backend::Sqlite, |config| {
            config.limits.max_decoding_message_size = 64 * 1024;
        })
        .await
        else {
            return;
        };
        let mut groups = server.groups();
        let error = groups
            .create_group(pb::CreateGroupRequest {
                group: Some(pb::Group {
                    name: "n".repeat(100 * 1024),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect_err("too large");
        assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
        groups
            .create_group(pb::CreateGroupRequest {
                group: Some(pb::Group {
                    name: "small".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("under the limit");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_principal_over_its_rate_is_told_when_to_retry_and_others_go_on() {
        let Some(server) = TestServer::start_with(Backend::Sqlite, |config| {
            config.limits.rate = Some(clientele::auth::rate::Rate {
                per_second: 2.0,
                burst: 10,
            });
        })
        .await
        else {
            return;
        };
        let agent = server.agent("rated", false).await;
        let mut groups = server
            .as_token(
                &server
                    .token(pb::token_owner::Owner::AgentId(agent.id))
                    .await,
            )
            .groups;
        let mut refused = None;
        for _ in 0..20 {
            if let Err(error) = groups.list_groups(pb::ListGroupsRequest::default()).await {
                refused = Some(error);
                break;
            }
        }
        let error = refused.expect("refused within twenty calls");
        assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
        assert_eq!(
            error.get_details_error_info().expect("error info").reason,
            "RATE_LIMITED"
        );
        let wait = error
            .get_details_retry_info()
            .expect("retry info")
            .retry_delay
            .expect("delay");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another principal has a bucket of its own.
        server
            .groups()
            .list_groups(pb::ListGroupsRequest::default())
            .await
            .expect("another principal");
        tokio::time::sleep(wait).await;
        groups
            .list_groups(pb::ListGroupsRequest::default())
            .await
            .expect("after the delay");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_requests_in_flight_the_server_sheds_at_once_and_takes_them_again_after() {
        let Some(server) = TestServer::start_with(Backend::Sqlite, |config| {
            config.limits.max_in_flight = Some(1);
        })
        .await
        else {
            return;
        };
        // An import in progress holds its place until its client ends the stream.
        let start_import = || {
            let (rows, receiver) = tokio::sync::mpsc::channel::<pb::ImportCustomersRequest>(1);
            let mut importer = server.customers();
            let import = tokio::spawn(async move {
                importer
                    .import_customers(tokio_stream::wrappers::ReceiverStream::new(receiver))
                    .await
            });
            (rows, import)
        };
        let (mut rows, mut import) = start_import();
        let mut groups = server.groups();
        let mut shed = None;
        for _ in 0..50 {
            // An import that arrived while a list held the one place was shed itself.
            if import.is_finished() {
                (rows, import) = start_import();
            }
            match groups.list_groups(pb::ListGroupsRequest::default()).await {
                Err(error) => {
                    shed = Some(error);
                    break;
                }
                // The import may not have reached the server yet.
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let error = shed.expect("shed while the import runs");
        assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
        assert_eq!(
            error.get_details_error_info().expect("error info").reason,
            "SERVER_BUSY"
        );
        assert!(error.get_details_retry_info().is_some());
        server
            .health()
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect("health is never shed");
        drop(rows);
        import.await.expect("task").expect("the import ends");
        groups
            .list_groups(pb::ListGroupsRequest::default())
            .await
            .expect("taken again");
        server.stop().await;
    }
}

mod grpc_web {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::clients::{available, stdout_of};

    /// The head of the answer to a raw HTTP/1.1 request.
    async fn http1(addr: std::net::SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = vec![0; 8192];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut answer))
            .await
            .expect("an answer")
            .expect("read");
        String::from_utf8_lossy(&answer[..read]).to_lowercase()
    }

    backend_tests! {
        async fn a_grpc_web_client_over_http1_calls_streams_and_reads_errors(server) {
            if !available("node", &["--version"]) {
                return;
            }
            let dir = tempfile::tempdir().expect("dir");
            let descriptors = dir.path().join("clientele.binpb");
            std::fs::write(&descriptors, clientele::proto::FILE_DESCRIPTOR_SET).expect("write");
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node/grpc_web.mjs");
            let output = std::process::Command::new("node")
                .arg(script)
                .arg(&descriptors)
                .arg(format!("http://{}", server.addr))
                .arg(&server.admin_secret)
                .output()
                .expect("node");
            assert!(stdout_of(&output).contains("grpc-web client: ok"));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn browsers_of_the_configured_origins_may_call_and_others_are_not_told_they_may() {
        let Some(server) = TestServer::start_with(Backend::Sqlite, |config| {
            config.cors_origins = vec!["https://desk.example".into()];
        })
        .await
        else {
            return;
        };
        let preflight = |origin: &str| {
            format!(
                "OPTIONS /clientele.v1.GroupService/ListGroups HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: POST\r\n\
                 Access-Control-Request-Headers: authorization,content-type,x-grpc-web\r\nConnection: close\r\n\r\n",
                server.addr
            )
        };
        let allowed = http1(server.addr, &preflight("https://desk.example")).await;
        assert!(allowed.starts_with("http/1.1 200"), "{allowed}");
        assert!(
            allowed.contains("access-control-allow-origin: https://desk.example"),
            "{allowed}"
        );
        assert!(allowed.contains("authorization"), "{allowed}");
        let other = http1(server.addr, &preflight("https://elsewhere.example")).await;
        assert!(!other.contains("access-control-allow-origin"), "{other}");
        // A gRPC-Web call from the allowed origin exposes the status to the page.
        let body = [0u8, 0, 0, 0, 0];
        let call = format!(
            "POST /clientele.v1.GroupService/ListGroups HTTP/1.1\r\nHost: {}\r\nOrigin: https://desk.example\r\n\
             Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nAuthorization: Bearer {}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            server.addr,
            server.admin_secret,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        stream.write_all(call.as_bytes()).await.expect("send");
        stream.write_all(&body).await.expect("send");
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
            .await
            .expect("an answer")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(answer.starts_with("http/1.1 200"), "{answer}");
        assert!(answer.contains("access-control-expose-headers"), "{answer}");
        assert!(answer.contains("grpc-status:0"), "{answer}");
        server.stop().await;
    }
}
