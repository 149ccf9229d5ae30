//! The sync of a customer source: a slapd (Debian's package) loaded with `--ldap-entries`
//! people by `slapadd`, and a second server on the same database reading it as a source; the
//! time of a full sync that creates every customer, of a full sync that changes nothing, and
//! that server's peak memory during each (the search is paged, so it must not grow with the
//! directory).

use std::{
    fmt::Write as _,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clientele::proto::v1 as pb;

use crate::{Args, BenchError, server::Target};

const PEOPLE: &str = "ou=people,dc=example,dc=com";
const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
const ROOT_PASSWORD: &str = "bench-directory-secret";

/// One sync as measured.
#[derive(Debug)]
pub struct Synced {
    /// Entries read.
    pub read: i64,
    /// Customers created or changed.
    pub changed: i64,
    /// Entries refused, and why the sync failed if it did.
    pub refused: i64,
    pub error: String,
    pub elapsed: Duration,
    /// The reading server's peak resident memory during the sync.
    pub peak_memory: Option<u64>,
}

/// The two syncs, and the server's memory before them.
#[derive(Debug)]
pub struct SourceSyncs {
    pub entries: usize,
    pub before: Option<u64>,
    pub first: Synced,
    pub again: Synced,
}

struct Slapd(Child);

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn program(name: &str) -> String {
    let system = format!("/usr/sbin/{name}");
    if std::path::Path::new(&system).exists() {
        system
    } else {
        name.to_owned()
    }
}

/// Whether slapd (and with it slapadd) is here.
pub fn slapd_installed() -> bool {
    Command::new(program("slapd"))
        .arg("-VV")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs the scenario next to `target` (whose database the reading server shares).
pub async fn run(
    args: &Args,
    target: &Target,
    binary: &std::path::Path,
) -> Result<SourceSyncs, BenchError> {
    let dir = tempfile::tempdir()?;
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::create_dir(dir.path().join("data"))?;
    std::fs::write(
        path("slapd.conf"),
        format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\nmodulepath /usr/lib/ldap\n\
             moduleload back_mdb\npidfile {}\ndatabase mdb\nsuffix \"dc=example,dc=com\"\n\
             rootdn \"{ROOT_DN}\"\nrootpw {ROOT_PASSWORD}\ndirectory {}\n\
             maxsize 4294967296\n",
            path("slapd.pid"),
            path("data"),
        ),
    )?;
    let mut tree = String::from(
        "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\n\
         dc: example\n\ndn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\n\
         ou: people\n\n",
    );
    for index in 0..args.ldap_entries {
        let _ = write!(
            tree,
            "dn: uid=p{index},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: p{index}\n\
             cn: Person {index}\ngivenName: Person\nsn: Directory{index}\n\
             mail: p{index}@directory.example\ntelephoneNumber: +49 30 {index}\n\n"
        );
    }
    std::fs::write(path("tree.ldif"), tree)?;
    eprintln!("customer source: slapadd {} entries …", args.ldap_entries);
    let loaded = Command::new(program("slapadd"))
        .args(["-q", "-f", &path("slapd.conf"), "-l", &path("tree.ldif")])
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run slapadd (Debian's slapd): {e}"))?;
    if !loaded.success() {
        return Err("slapadd failed".into());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _slapd = Slapd(
        Command::new(program("slapd"))
            .args(["-f", &path("slapd.conf"), "-h"])
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start slapd: {e}"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err("slapd did not start listening".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(path("password"), ROOT_PASSWORD)?;
    std::fs::write(
        path("sources.json"),
        format!(
            r#"{{"sources": [{{"name": "bench", "url": "ldap://127.0.0.1:{port}",
                "allow_plaintext": true, "bind_dn": "{ROOT_DN}", "bind_password_file": "password",
                "base_dn": "{PEOPLE}", "sync_interval_seconds": 86400, "page_size": 500,
                "mapping": {{"email": "mail", "first_name": "givenName", "last_name": "sn",
                             "login": "uid", "phone": "telephoneNumber"}}}}]}}"#
        ),
    )?;
    // The reading server syncs once as it starts; the scenario waits for that sync (the
    // first), then asks for a second.
    let reader = target
        .replica_with(
            binary,
            &[("CLIENTELE_CUSTOMER_SOURCES", path("sources.json"))],
        )
        .await?;
    let before = reader.memory();
    reader.reset_peak_memory();
    let mut client =
        pb::customer_source_service_client::CustomerSourceServiceClient::new(reader.admin().await?);
    let started = Instant::now();
    let first = loop {
        let listed = client
            .list_customer_sources(pb::ListCustomerSourcesRequest {})
            .await?
            .into_inner()
            .sources;
        if let Some(source) = listed.into_iter().find(|s| s.last_sync_end_time.is_some()) {
            break source;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let first = synced(first, started.elapsed(), reader.peak_memory());
    eprintln!("  first sync: {first:?}");
    reader.reset_peak_memory();
    let started = Instant::now();
    let again = client
        .sync_customer_source(pb::SyncCustomerSourceRequest {
            name: "bench".into(),
            full: true,
        })
        .await?
        .into_inner()
        .customer_source
        .ok_or("no source in the answer")?;
    let again = synced(again, started.elapsed(), reader.peak_memory());
    eprintln!("  second sync: {again:?}");
    reader.stop().await;
    Ok(SourceSyncs {
        entries: args.ldap_entries,
        before,
        first,
        again,
    })
}

fn synced(source: pb::CustomerSource, elapsed: Duration, peak_memory: Option<u64>) -> Synced {
    Synced {
        read: source.entries_read,
        changed: source.entries_changed,
        refused: source.entries_refused,
        error: source.error,
        elapsed,
        peak_memory,
    }
}
