//! Customer sources: customers read from a real OpenLDAP (`slapd` from Debian's packages),
//! which each test starts with a tree it loads itself (`slapadd`) and changes over LDAP.

use std::{
    collections::HashSet,
    path::Path,
    process::{Child, Command, Stdio},
};

use clientele::{domain::customer_source::config, proto::v1 as pb};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::Code;

use crate::{
    clients::available,
    support::{desk::eventually, *},
};

const PEOPLE: &str = "ou=people,dc=example,dc=com";
const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
const ROOT_PASSWORD: &str = "directory-secret";

fn program(name: &str) -> String {
    let system = format!("/usr/sbin/{name}");
    if Path::new(&system).exists() {
        system
    } else {
        name.to_owned()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A running slapd with `dc=example,dc=com` and an empty `ou=people`.
struct Slapd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
    /// The certificate authority of its certificate (for `localhost`), when it serves TLS.
    ca_pem: Option<String>,
}

impl Slapd {
    /// `None` when slapd is not installed (a failure when CI requires the tools).
    async fn start(tls: bool) -> Option<Self> {
        Self::start_loaded(tls, "").await
    }

    /// Like `start`, with the entries of `people` (LDIF) loaded by slapadd first.
    async fn start_loaded(tls: bool, people: &str) -> Option<Self> {
        if !available(&program("slapd"), &["-VV"]) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::create_dir(dir.path().join("data")).expect("data dir");
        let mut tls_lines = String::new();
        let mut ca_pem = None;
        if tls {
            let (ca, cert, key) = certificates();
            std::fs::write(path("cert.pem"), cert).expect("cert");
            std::fs::write(path("key.pem"), key).expect("key");
            tls_lines = format!(
                "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                path("cert.pem"),
                path("key.pem")
            );
            ca_pem = Some(ca);
        }
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {pid}\n\
             {tls_lines}\
             database mdb\n\
             suffix \"dc=example,dc=com\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PASSWORD}\n\
             directory {data}\n\
             maxsize 104857600\n",
            pid = path("slapd.pid"),
            data = path("data"),
        );
        std::fs::write(path("slapd.conf"), conf).expect("slapd.conf");
        std::fs::write(
            path("tree.ldif"),
            "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\n\
             o: Example\ndc: example\n\n\
             dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n"
                .to_owned()
                + people,
        )
        .expect("tree");
        let loaded = Command::new(program("slapadd"))
            .args(["-f", &path("slapd.conf"), "-l", &path("tree.ldif")])
            .output()
            .expect("slapadd runs");
        assert!(
            loaded.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        let mut slapd = Self {
            dir,
            child: None,
            port: free_port(),
            tls_port: tls.then(free_port),
            ca_pem,
        };
        slapd.run().await;
        Some(slapd)
    }

    /// Starts the server (again).
    async fn run(&mut self) {
        let mut urls = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(port) = self.tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{port}/"));
        }
        let conf = self.dir.path().join("slapd.conf");
        let child = Command::new(program("slapd"))
            .arg("-f")
            .arg(&conf)
            .args(["-h", &urls, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd starts");
        self.child = Some(child);
        for port in [Some(self.port), self.tls_port].into_iter().flatten() {
            eventually("slapd listens", || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            })
            .await;
        }
    }

    /// Stops the server: the directory is down.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// A connection bound as the directory's administrator, to change entries.
    async fn admin(&self) -> ldap3::Ldap {
        let (conn, mut ldap) = ldap3::LdapConnAsync::new(&self.url())
            .await
            .expect("connect to slapd");
        ldap3::drive!(conn);
        ldap.simple_bind(ROOT_DN, ROOT_PASSWORD)
            .await
            .expect("bind")
            .success()
            .expect("bound");
        ldap
    }

    /// Adds person `uid` with `attributes` (besides its object class, uid, cn and sn).
    async fn add(&self, uid: &str, attributes: &[(&str, &str)]) {
        let mut values: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("uid", HashSet::from([uid])),
            ("cn", HashSet::from([uid])),
        ];
        if !attributes.iter().any(|(name, _)| *name == "sn") {
            values.push(("sn", HashSet::from([uid])));
        }
        for (name, value) in attributes {
            values.push((name, HashSet::from([*value])));
        }
        self.admin()
            .await
            .add(&format!("uid={uid},{PEOPLE}"), values)
            .await
            .expect("add")
            .success()
            .expect("added");
    }

    /// Replaces attribute `name` of person `uid` with `value`.
    async fn replace(&self, uid: &str, name: &str, value: &str) {
        self.admin()
            .await
            .modify(
                &format!("uid={uid},{PEOPLE}"),
                vec![ldap3::Mod::Replace(name, HashSet::from([value]))],
            )
            .await
            .expect("modify")
            .success()
            .expect("modified");
    }

    /// Removes person `uid`.
    async fn remove(&self, uid: &str) {
        self.admin()
            .await
            .delete(&format!("uid={uid},{PEOPLE}"))
            .await
            .expect("delete")
            .success()
            .expect("deleted");
    }

    /// A source named `name` reading this directory at `url` (`ldap://` plain by default),
    /// with `extra` JSON members.
    fn source(&self, name: &str, url: &str, extra: &str) -> config::SourceConfig {
        std::fs::write(
            self.dir.path().join("password"),
            format!("{ROOT_PASSWORD}\n"),
        )
        .expect("password file");
        if let Some(ca) = &self.ca_pem {
            std::fs::write(self.dir.path().join("ca.pem"), ca).expect("ca file");
        }
        let text = format!(
            r#"{{"sources": [{{
                "name": "{name}", "url": "{url}", {extra}
                "bind_dn": "{ROOT_DN}", "bind_password_file": "password",
                "base_dn": "{PEOPLE}", "sync_interval_seconds": 3600, "timeout_seconds": 5,
                "mapping": {{"email": "mail", "first_name": "givenName", "last_name": "sn",
                             "login": "uid", "title": "title", "phone": "telephoneNumber",
                             "mobile": "mobile", "organisation": "o",
                             "custom_fields": {{"department": "departmentNumber"}}}}
            }}]}}"#
        );
        config::parse(&text, self.dir.path(), |_| None)
            .expect("source configuration")
            .remove(0)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A certificate authority and a certificate (with its key) it issued for `localhost`.
fn certificates() -> (String, String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Directory CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).expect("certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The server reading `sources`, once its first syncs (of the empty directory) are done.
async fn serving(backend: Backend, sources: Vec<config::SourceConfig>) -> Option<TestServer> {
    let names: Vec<String> = sources.iter().map(|source| source.name.clone()).collect();
    let server =
        TestServer::start_with(backend, |config| config.customer_sources = sources).await?;
    eventually("the first syncs end", || {
        let mut client = server.customer_sources();
        let names = names.clone();
        async move {
            let listed = client
                .list_customer_sources(pb::ListCustomerSourcesRequest {})
                .await
                .expect("list")
                .into_inner()
                .sources;
            names.iter().all(|name| {
                listed
                    .iter()
                    .any(|source| source.name == *name && source.last_sync_end_time.is_some())
            })
        }
    })
    .await;
    Some(server)
}

async fn sync(server: &TestServer, name: &str, full: bool) -> pb::CustomerSource {
    server
        .customer_sources()
        .sync_customer_source(pb::SyncCustomerSourceRequest {
            name: name.to_owned(),
            full,
        })
        .await
        .expect("sync")
        .into_inner()
        .customer_source
        .expect("source")
}

async fn by_email(server: &TestServer, email: &str) -> pb::Customer {
    server
        .customers()
        .get_customer(pb::GetCustomerRequest {
            key: Some(pb::get_customer_request::Key::Email(email.to_owned())),
        })
        .await
        .expect("get customer")
        .into_inner()
        .customer
        .expect("customer")
}

/// Runs each test on SQLite and PostgreSQL, starting what it needs itself:
/// `on_both_backends! { async fn name(backend) { … } }`.
macro_rules! on_both_backends {
    ($( $(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(clientele_postgres_tests), ignore = "CLIENTELE_TEST_POSTGRES_URL is not set")]
            async fn postgres() {
                run(Backend::Postgres).await;
            }

            async fn run($backend: Backend) $body
        }
    )*};
}

/// Runs each test on SQLite and PostgreSQL with a fresh slapd and a server reading it as
/// source `corp`: `source_tests! { async fn name(server, ldap) { … } }`.
macro_rules! source_tests {
    ($( async fn $name:ident($server:ident, $ldap:ident) $body:block )*) => {
        on_both_backends! {$(
            async fn $name(backend) {
                #[allow(unused_mut)]
                let Some(mut $ldap) = Slapd::start(false).await else {
                    return;
                };
                let source = $ldap.source("corp", &$ldap.url(), r#""allow_plaintext": true,"#);
                let Some($server) = serving(backend, vec![source]).await else {
                    return;
                };
                $body
                $server.stop().await;
            }
        )*}
    };
}

source_tests! {
    async fn entries_become_customers_through_the_mapping(server, ldap) {
        let acme = server.organisation("acme", &[]).await;
        ldap.add("anna", &[("mail", "anna@acme.example"), ("givenName", "Anna"), ("sn", "Muster"),
            ("title", "Dr."), ("telephoneNumber", "+49 30 1234-5"), ("mobile", "+49 170 555"),
            ("o", "ACME"), ("departmentNumber", "Sales")]).await;
        ldap.add("bert", &[("mail", "bert@example.org"), ("sn", "Beispiel")]).await;
        let status = sync(&server, "corp", false).await;
        assert_eq!(status.error, "", "{status:?}");
        assert_eq!(status.last_sync_kind, pb::SyncKind::Full as i32, "the first sync with entries reads them all");
        assert_eq!((status.entries_read, status.entries_changed, status.entries_refused), (2, 2, 0), "{status:?}");
        assert!(status.last_success_time.is_some());
        assert_eq!(status.base_dn, PEOPLE);
        assert!(!status.url.contains(ROOT_PASSWORD));

        let anna = by_email(&server, "anna@acme.example").await;
        assert_eq!(
            (anna.first_name.as_str(), anna.last_name.as_str(), anna.title.as_str(), anna.login.as_str()),
            ("Anna", "Muster", "Dr.", "anna")
        );
        assert_eq!((anna.phone.as_str(), anna.mobile.as_str()), ("+49 30 1234-5", "+49 170 555"));
        assert_eq!(anna.organisation_id, acme.id, "the organisation by its code, case ignored");
        assert_eq!(anna.custom_fields.get("department").map(String::as_str), Some("Sales"));
        assert_eq!(anna.source, "corp");
        assert_eq!(anna.validity, pb::Validity::Valid as i32);
        let bert = by_email(&server, "bert@example.org").await;
        assert_eq!((bert.first_name.as_str(), bert.source.as_str()), ("", "corp"));

        // Nothing changed: the next sync reads only what changed since, and writes nothing.
        let again = sync(&server, "corp", false).await;
        assert_eq!(again.last_sync_kind, pb::SyncKind::Incremental as i32);
        assert_eq!((again.entries_changed, again.entries_refused, again.entries_invalidated), (0, 0, 0), "{again:?}");
        assert_eq!(by_email(&server, "anna@acme.example").await.etag, anna.etag);
        let full = sync(&server, "corp", true).await;
        assert_eq!(full.last_sync_kind, pb::SyncKind::Full as i32);
        assert_eq!((full.entries_read, full.entries_changed), (2, 0), "{full:?}");

        // The change log names the source as the actor.
        let history = server.changes()
            .get_history(pb::GetHistoryRequest { resource_type: pb::ResourceType::Customer.into(), resource_id: anna.id.clone(), ..Default::default() })
            .await.expect("history").into_inner();
        assert!(!history.events.is_empty() && history.events.iter().all(|event| event.actor == "source:corp"), "{history:?}");

        // Listed with its last sync.
        let listed = server.customer_sources().list_customer_sources(pb::ListCustomerSourcesRequest {})
            .await.expect("list").into_inner().sources;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].entries_read, 2);
        assert_eq!(listed[0].sync_interval_seconds, 3600);
    }

    async fn what_the_directory_owns_is_read_only_and_the_rest_works_as_for_any_customer(server, ldap) {
        let desk = server.desk("acme").await;
        ldap.add("anna", &[("mail", "anna@acme.example"), ("givenName", "Anna"), ("sn", "Muster"), ("o", "acme")]).await;
        sync(&server, "corp", false).await;
        let anna = by_email(&server, "anna@acme.example").await;
        let before = server.snapshot().await;

        let update = |customer: pb::Customer, paths: &[&str]| pb::UpdateCustomerRequest {
            customer: Some(customer),
            update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        };
        let renamed = pb::Customer { first_name: "Hanna".into(), ..anna.clone() };
        let refused = expect_code(server.customers().update_customer(update(renamed, &["first_name"])).await, Code::FailedPrecondition);
        assert_eq!(reason(&refused).as_deref(), Some("SOURCE_READ_ONLY"));
        assert!(refused.message().contains("first_name") && refused.message().contains("\"corp\""), "{}", refused.message());
        let department = pb::Customer { custom_fields: [("department".to_owned(), "Ops".to_owned())].into(), ..anna.clone() };
        let refused = expect_code(server.customers().update_customer(update(department, &["custom_fields"])).await, Code::FailedPrecondition);
        assert!(refused.message().contains("custom_fields.department"), "{}", refused.message());
        let refused = expect_code(
            server.customers().deactivate_customer(pb::DeactivateCustomerRequest { id: anna.id.clone(), etag: anna.etag.clone(), ..Default::default() }).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&refused).as_deref(), Some("SOURCE_READ_ONLY"));
        let refused = expect_code(
            server.customers().delete_customer(pb::DeleteCustomerRequest { id: anna.id.clone(), etag: anna.etag.clone() }).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&refused).as_deref(), Some("SOURCE_READ_ONLY"));
        let refused = expect_code(
            server.privacy().erase_customer(pb::EraseCustomerRequest { id: anna.id.clone(), ..Default::default() }).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&refused).as_deref(), Some("SOURCE_READ_ONLY"));
        // An import row for her meets the same rule.
        let summary = server.customers()
            .import_customers(tokio_stream::iter(vec![pb::ImportCustomersRequest { row: Some(pb::CustomerImportRow {
                email: "anna@acme.example".into(), first_name: "Import".into(), last_name: "Muster".into(), organisation_code: "acme".into(), ..Default::default()
            }) }]))
            .await.expect("import").into_inner().summary.expect("summary");
        assert_eq!(summary.failed, 1, "{summary:?}");
        assert_eq!(summary.errors[0].reason, "SOURCE_READ_ONLY");
        assert_eq!(server.snapshot().await, before, "refused writes change nothing");
        assert_eq!(server.customer_etag(&anna.id).await, anna.etag, "she is as she was");

        // What the directory does not own is the helpdesk's: the type, an unmapped custom
        // field, a value sent unchanged.
        let typed = pb::Customer { r#type: "VIP".into(), first_name: "Anna".into(), custom_fields: [("shoe".to_owned(), "42".to_owned())].into(), ..anna.clone() };
        let updated = server.customers().update_customer(update(typed, &["type", "first_name", "custom_fields"])).await.expect("update what the helpdesk owns").into_inner().customer.expect("customer");
        assert_eq!(updated.r#type, "VIP");
        assert_eq!(updated.custom_fields.get("shoe").map(String::as_str), Some("42"));

        // Tickets, notes and merges work for her.
        let ticket = desk.create(pb::Ticket { customer_id: anna.id.clone(), ..desk.ticket("From the directory") }).await;
        assert_eq!(ticket.customer_id, anna.id);
        let duplicate = server.customer(pb::Customer { email: "anna.private@example.org".into(), phone: "+1 555".into(), ..Default::default() }).await;
        let merge = |source: &pb::Customer, target: &pb::Customer, source_etag: String, target_etag: String| pb::MergeCustomersRequest {
            source_id: source.id.clone(), target_id: target.id.clone(), source_etag, target_etag,
        };
        let refused = expect_code(
            server.customers().merge_customers(merge(&anna, &duplicate, server.customer_etag(&anna.id).await, server.customer_etag(&duplicate.id).await)).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&refused).as_deref(), Some("SOURCE_READ_ONLY"), "the directory's customer is not merged away");
        let merged = server.customers()
            .merge_customers(merge(&duplicate, &anna, server.customer_etag(&duplicate.id).await, server.customer_etag(&anna.id).await))
            .await.expect("merge into the directory's customer").into_inner().customer.expect("customer");
        assert_eq!((merged.email.as_str(), merged.first_name.as_str()), ("anna@acme.example", "Anna"));
        assert_eq!(merged.secondary_emails, ["anna.private@example.org"]);
        assert_eq!(merged.phone, "", "the directory owns the phone: the duplicate's does not fill it");
        assert_eq!(merged.source, "corp");
        // Notes, contact groups and grants too.
        server.comments().create_comment(pb::CreateCommentRequest {
            comment: Some(pb::Comment {
                body: "Prefers the phone".into(),
                visibility: pb::CommentVisibility::Internal.into(),
                parent: Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::CustomerId(anna.id.clone())) }),
                ..Default::default()
            }),
            request_id: String::new(),
        }).await.expect("a note on her");
        let key_accounts = crate::contact_groups::contact_group(&server, "Key accounts", "Customers", &[]).await;
        server.contact_groups().add_contact_group_members(pb::AddContactGroupMembersRequest {
            contact_group_id: key_accounts.id.clone(), customer_ids: vec![anna.id.clone()], organisation_ids: Vec::new(),
        }).await.expect("she joins a contact group");
        server.grant(pb::subject::Subject::CustomerId(anna.id.clone()), &desk.group.id, pb::PermissionLevel::Rw, pb::GrantContext::Unspecified).await;
        // The next sync changes nothing the helpdesk owns.
        let status = sync(&server, "corp", true).await;
        assert_eq!(status.entries_changed, 0, "{status:?}");
        let anna = by_email(&server, "anna@acme.example").await;
        assert_eq!((anna.r#type.as_str(), anna.secondary_emails.len()), ("VIP", 1));
    }

    async fn a_change_is_read_incrementally_and_a_removed_entry_makes_its_customer_invalid(server, ldap) {
        ldap.add("anna", &[("mail", "anna@example.org"), ("sn", "Muster")]).await;
        ldap.add("bert", &[("mail", "bert@example.org"), ("sn", "Beispiel")]).await;
        ldap.add("cora", &[("mail", "cora@example.org"), ("sn", "Clausen")]).await;
        sync(&server, "corp", false).await;
        ldap.replace("anna", "sn", "Musterfrau").await;
        let status = sync(&server, "corp", false).await;
        assert_eq!(status.last_sync_kind, pb::SyncKind::Incremental as i32);
        assert_eq!((status.entries_changed, status.entries_invalidated), (1, 0), "{status:?}");
        assert_eq!(by_email(&server, "anna@example.org").await.last_name, "Musterfrau");

        ldap.remove("bert").await;
        ldap.remove("cora").await;
        let status = sync(&server, "corp", false).await;
        assert_eq!((status.entries_changed, status.entries_invalidated), (0, 2), "{status:?}");
        let bert = by_email(&server, "bert@example.org").await;
        assert_eq!(bert.validity, pb::Validity::Invalid as i32, "invalid, not deleted");
        assert_eq!(by_email(&server, "anna@example.org").await.validity, pb::Validity::Valid as i32);
        // Once gone from the directory, the customer may be deleted by hand.
        let cora = by_email(&server, "cora@example.org").await;
        server.customers().delete_customer(pb::DeleteCustomerRequest { id: cora.id.clone(), etag: cora.etag.clone() }).await.expect("delete a customer whose entry is gone");
        // Made anew in the directory (a new entryUUID), the customer is the same one, valid
        // again.
        ldap.add("bert", &[("mail", "bert@example.org"), ("sn", "Beispiel")]).await;
        let status = sync(&server, "corp", false).await;
        assert_eq!(status.entries_changed, 1, "{status:?}");
        let back = by_email(&server, "bert@example.org").await;
        assert_eq!((back.id.as_str(), back.validity), (bert.id.as_str(), pb::Validity::Valid as i32), "the same customer");

        // A directory that answers nothing at all makes nobody invalid, unless a full sync
        // is asked for.
        ldap.remove("anna").await;
        ldap.remove("bert").await;
        let status = sync(&server, "corp", false).await;
        assert!(status.error.contains("no entries"), "{status:?}");
        assert_eq!(status.entries_invalidated, 0);
        assert_eq!(by_email(&server, "anna@example.org").await.validity, pb::Validity::Valid as i32);
        let status = sync(&server, "corp", true).await;
        assert_eq!((status.error.as_str(), status.entries_invalidated), ("", 2), "{status:?}");
    }

    async fn an_entry_whose_address_another_customer_has_is_reported_not_overwritten(server, ldap) {
        let own = server.customer(pb::Customer { email: "carl@example.org".into(), first_name: "Carl".into(), ..Default::default() }).await;
        ldap.add("carl", &[("mail", "Carl@Example.org"), ("givenName", "Karl"), ("sn", "Kopie")]).await;
        ldap.add("dora", &[("mail", "dora@example.org"), ("o", "no-such-code")]).await;
        ldap.add("emil", &[("mail", "not an address")]).await;
        let status = sync(&server, "corp", false).await;
        assert_eq!(status.error, "");
        assert_eq!((status.entries_read, status.entries_changed, status.entries_refused), (3, 0, 3), "{status:?}");
        let reasons: HashSet<(String, String)> = status.refusals.iter().map(|r| (r.dn.clone(), r.reason.clone())).collect();
        assert_eq!(reasons, HashSet::from([
            (format!("uid=carl,{PEOPLE}"), "EMAIL_TAKEN".to_owned()),
            (format!("uid=dora,{PEOPLE}"), "ORGANISATION_UNKNOWN".to_owned()),
            (format!("uid=emil,{PEOPLE}"), "INVALID_ENTRY".to_owned()),
        ]));
        let carl = status.refusals.iter().find(|r| r.reason == "EMAIL_TAKEN").expect("carl");
        assert!(carl.message.contains(&own.id), "{}", carl.message);
        let unchanged = server.customer_by_id(&own.id).await;
        assert_eq!((unchanged.first_name.as_str(), unchanged.source.as_str(), unchanged.etag.as_str()), ("Carl", "", own.etag.as_str()));
        let listed = server.customer_sources().list_customer_sources(pb::ListCustomerSourcesRequest {}).await.expect("list").into_inner().sources;
        assert_eq!(listed[0].refusals.len(), 3, "the status keeps the refusals");
    }

    async fn a_directory_that_is_down_fails_the_sync_visibly_and_changes_nothing(server, ldap) {
        ldap.add("anna", &[("mail", "anna@example.org"), ("sn", "Muster")]).await;
        let good = sync(&server, "corp", false).await;
        assert_eq!(good.error, "");
        let before = server.snapshot().await;
        ldap.stop();
        for full in [false, true] {
            let failed = sync(&server, "corp", full).await;
            assert!(failed.error.contains("connecting to"), "{failed:?}");
            assert_eq!(failed.last_success_time, good.last_success_time, "the last success stays");
        }
        assert_eq!(server.snapshot().await, before, "nothing changed");
        assert_eq!(by_email(&server, "anna@example.org").await.validity, pb::Validity::Valid as i32);
        let listed = server.customer_sources().list_customer_sources(pb::ListCustomerSourcesRequest {}).await.expect("list").into_inner().sources;
        assert!(listed[0].error.contains("connecting to"), "{listed:?}");
        // Back up, the next sync succeeds and clears the error.
        ldap.run().await;
        let again = sync(&server, "corp", false).await;
        assert_eq!(again.error, "");
    }

    async fn two_replicas_sync_one_at_a_time_and_lose_nothing(server, ldap) {
        let source = ldap.source("corp", &ldap.url(), r#""allow_plaintext": true,"#);
        let replica = server.replica_with(|config| config.customer_sources = vec![source]).await;
        for index in 0..40 {
            let (uid, mail) = (format!("p{index}"), format!("p{index}@example.org"));
            ldap.add(&uid, &[("mail", mail.as_str())]).await;
        }
        let mut here = server.customer_sources();
        let mut there = clientele::proto::v1::customer_source_service_client::CustomerSourceServiceClient::new(replica.authed(&server.admin_secret));
        let request = |full: bool| pb::SyncCustomerSourceRequest { name: "corp".into(), full };
        let mut synced = 0;
        for full in [false, true, false] {
            let (a, b) = tokio::join!(here.sync_customer_source(request(full)), there.sync_customer_source(request(full)));
            for outcome in [a, b] {
                match outcome {
                    Ok(answer) => {
                        let status = answer.into_inner().customer_source.expect("source");
                        assert_eq!((status.error.as_str(), status.entries_invalidated), ("", 0), "{status:?}");
                        synced += 1;
                    }
                    Err(status) => {
                        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                        assert_eq!(reason(&status).as_deref(), Some("SYNC_RUNNING"));
                    }
                }
            }
        }
        assert!(synced >= 3, "each round syncs once at least");
        for index in 0..40 {
            let customer = by_email(&server, &format!("p{index}@example.org")).await;
            assert_eq!((customer.validity, customer.source.as_str()), (pb::Validity::Valid as i32, "corp"));
        }
        replica.stop().await;
    }

    async fn only_admins_see_and_sync_sources_and_bad_names_are_clear_errors(server, ldap) {
        let agent = server.agent("reader", true).await;
        let secret = server.token(pb::token_owner::Owner::AgentId(agent.id.clone())).await;
        let mut as_agent = clientele::proto::v1::customer_source_service_client::CustomerSourceServiceClient::new(server.authed(Some(&secret)));
        let denied = expect_code(as_agent.list_customer_sources(pb::ListCustomerSourcesRequest {}).await, Code::PermissionDenied);
        assert_eq!(reason(&denied).as_deref(), Some("ROLE_NOT_ALLOWED"));
        expect_code(as_agent.sync_customer_source(pb::SyncCustomerSourceRequest { name: "corp".into(), full: false }).await, Code::PermissionDenied);
        let mut admin = server.customer_sources();
        expect_invalid(admin.sync_customer_source(pb::SyncCustomerSourceRequest { name: String::new(), full: false }).await, "name");
        expect_invalid(admin.sync_customer_source(pb::SyncCustomerSourceRequest { name: "corp\0".into(), full: false }).await, "name");
        expect_code(admin.sync_customer_source(pb::SyncCustomerSourceRequest { name: "other".into(), full: false }).await, Code::NotFound);
        let _ = &mut ldap;
    }
}

on_both_backends! {
    /// The sync runs on its own, on the configured interval.
    async fn the_sync_runs_on_its_interval(backend) {
        let Some(ldap) = Slapd::start(false).await else {
            return;
        };
        let mut source = ldap.source("corp", &ldap.url(), r#""allow_plaintext": true,"#);
        source.sync_interval = std::time::Duration::from_secs(1);
        let Some(server) = serving(backend, vec![source]).await else {
            return;
        };
        ldap.add("anna", &[("mail", "anna@example.org"), ("sn", "Muster")])
            .await;
        eventually("the scheduled sync reads the new entry", || {
            let mut customers = server.customers();
            async move {
                customers
                    .get_customer(pb::GetCustomerRequest {
                        key: Some(pb::get_customer_request::Key::Email(
                            "anna@example.org".into(),
                        )),
                    })
                    .await
                    .is_ok()
            }
        })
        .await;
        server.stop().await;
    }

    /// LDAPS and StartTLS, with the directory's certificate authority from `ca_file`; a
    /// directory whose certificate is not trusted fails the sync and says why.
    async fn tls(backend) {
        let Some(ldap) = Slapd::start(true).await else {
            return;
        };
        let tls_port = ldap.tls_port.expect("TLS port");
        let ldaps = ldap.source(
            "ldaps",
            &format!("ldaps://localhost:{tls_port}"),
            r#""ca_file": "ca.pem","#,
        );
        let starttls = ldap.source(
            "starttls",
            &format!("ldap://localhost:{}", ldap.port),
            r#""starttls": true, "ca_file": "ca.pem","#,
        );
        // Trusting only the public authorities, not the directory's own.
        let untrusted = ldap.source("untrusted", &format!("ldaps://localhost:{tls_port}"), "");
        let Some(server) = serving(backend, vec![ldaps, starttls, untrusted]).await else {
            return;
        };
        ldap.add("anna", &[("mail", "anna@example.org"), ("sn", "Muster")])
            .await;
        let status = sync(&server, "ldaps", false).await;
        assert_eq!(
            (status.error.as_str(), status.entries_changed),
            ("", 1),
            "{status:?}"
        );
        assert_eq!(by_email(&server, "anna@example.org").await.source, "ldaps");
        ldap.add("bert", &[("mail", "bert@example.org"), ("sn", "Beispiel")])
            .await;
        let status = sync(&server, "starttls", false).await;
        assert_eq!(status.error, "", "{status:?}");
        assert_eq!(
            by_email(&server, "bert@example.org").await.source,
            "starttls"
        );
        let status = sync(&server, "untrusted", false).await;
        assert!(
            status.error.to_lowercase().contains("certificate"),
            "{status:?}"
        );
        server.stop().await;
    }

    /// An incremental sync reads only the entries changed since the last one (an entry last
    /// changed years ago, loaded with its old `modifyTimestamp`, is not read again), and a full
    /// one reads them all.
    async fn an_incremental_sync_reads_only_the_changed_entries(backend) {
        let old = format!(
            "dn: uid=old,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: old\ncn: old\nsn: Alt\n\
             mail: old@example.org\ncreateTimestamp: 20200101000000Z\n\
             modifyTimestamp: 20200101000000Z\n"
        );
        let Some(ldap) = Slapd::start_loaded(false, &old).await else {
            return;
        };
        let source = ldap.source("corp", &ldap.url(), r#""allow_plaintext": true,"#);
        let Some(server) = serving(backend, vec![source]).await else {
            return;
        };
        assert_eq!(
            by_email(&server, "old@example.org").await.last_name,
            "Alt",
            "the first sync read it"
        );
        // The newest change read so far is the old entry's: this sync reads both.
        ldap.add("anna", &[("mail", "anna@example.org"), ("sn", "Muster")])
            .await;
        let status = sync(&server, "corp", false).await;
        assert_eq!(status.last_sync_kind, pb::SyncKind::Incremental as i32);
        assert_eq!(
            (status.entries_read, status.entries_changed),
            (2, 1),
            "{status:?}"
        );
        // Now it is Anna's: the next reads the entries of the last minute, not the old one.
        ldap.add("bert", &[("mail", "bert@example.org"), ("sn", "Beispiel")])
            .await;
        let status = sync(&server, "corp", false).await;
        assert_eq!(status.last_sync_kind, pb::SyncKind::Incremental as i32);
        assert_eq!(
            (
                status.entries_read,
                status.entries_changed,
                status.entries_invalidated
            ),
            (2, 1, 0),
            "{status:?}"
        );
        assert_eq!(
            by_email(&server, "old@example.org").await.validity,
            pb::Validity::Valid as i32,
            "seen by its key"
        );
        let status = sync(&server, "corp", true).await;
        assert_eq!(
            (status.entries_read, status.entries_changed),
            (3, 0),
            "{status:?}"
        );
        server.stop().await;
    }
}
