//! The deployment files (`deploy/`, `Dockerfile`) cannot be run here (no Docker engine, no
//! cluster), so they are read and held to the binary they deploy: every command and variable
//! they give is one `clientele` accepts, the ports agree with the listen addresses, the probes
//! ask what the server answers, and the pieces refer to each other by the right names.

use std::{collections::BTreeSet, path::Path, process::Command};

use serde_json::Value;

use crate::clients::{available, stdout_of};

const BINARY: &str = env!("CARGO_BIN_EXE_clientele");

/// Every YAML document in `file`, as JSON (read with Python's PyYAML, `safe_load_all`).
fn documents(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let output = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(&path)
        .output()
        .expect("python3");
    serde_json::from_str(&stdout_of(&output)).expect("JSON")
}

/// What `clientele ARGS --help` documents.
fn help(args: &[&str]) -> String {
    let output = Command::new(BINARY)
        .args(args)
        .arg("--help")
        .output()
        .expect("clientele");
    stdout_of(&output)
}

/// The port of a `HOST:PORT` address.
fn port(address: &str) -> u64 {
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// The variables a command documents (`[env: NAME]`).
fn variables(help: &str) -> BTreeSet<String> {
    help.split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split([']', '=']).next())
        .map(str::to_owned)
        .collect()
}

fn assert_accepted(names: impl IntoIterator<Item = String>, command: &str, what: &str) {
    let known = variables(&help(&[command]));
    for name in names {
        assert!(
            known.contains(&name),
            "{what} sets {name}, which `clientele {command}` does not read ({known:?})"
        );
    }
}

#[test]
fn the_compose_file_starts_postgres_then_the_migration_then_the_server_on_its_ports() {
    if !available("python3", &["-c", "import yaml"]) {
        return;
    }
    let compose = &documents("deploy/compose.yaml")[0];
    let services = &compose["services"];
    let migrate = &services["migrate"];
    let server = &services["clientele"];
    assert_eq!(migrate["command"], serde_json::json!(["migrate"]));
    assert_eq!(server["command"], serde_json::json!(["serve"]));
    assert_eq!(
        migrate["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    assert_eq!(
        server["depends_on"]["migrate"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(
        server["healthcheck"]["test"],
        serde_json::json!(["CMD", "clientele", "health"])
    );
    let environment = server["environment"].as_object().expect("environment");
    assert_accepted(environment.keys().cloned(), "serve", "compose's server");
    assert_accepted(
        migrate["environment"]
            .as_object()
            .expect("environment")
            .keys()
            .cloned(),
        "migrate",
        "compose's migration",
    );
    let published: BTreeSet<u64> = server["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| port(p.as_str().expect("a port mapping")))
        .collect();
    for variable in ["CLIENTELE_LISTEN", "CLIENTELE_METRICS_LISTEN"] {
        let address = environment[variable].as_str().expect(variable);
        assert!(
            published.contains(&port(address)),
            "{variable} {address} is not published: {published:?}"
        );
    }
    assert!(services["postgres"]["healthcheck"]["test"].is_array());
}

#[test]
fn the_kubernetes_manifests_probe_what_the_server_answers_and_refer_to_each_other() {
    if !available("python3", &["-c", "import yaml"]) {
        return;
    }
    let manifests = documents("deploy/kubernetes/clientele.yaml");
    let kind = |name: &str| {
        manifests
            .iter()
            .find(|m| m["kind"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let kinds: BTreeSet<&str> = manifests
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "Deployment",
            "Job",
            "PodDisruptionBudget",
            "Secret",
            "Service"
        ])
    );
    let secret = kind("Secret");
    let secret_keys: Vec<String> = secret["stringData"]
        .as_object()
        .expect("stringData")
        .keys()
        .cloned()
        .collect();
    assert_accepted(secret_keys.clone(), "serve", "the secret");
    assert!(secret_keys.contains(&"DATABASE_URL".to_owned()));

    let job = &kind("Job")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(job["args"], serde_json::json!(["migrate"]));
    assert_eq!(
        job["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );

    let deployment = kind("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"], serde_json::json!(["serve"]));
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name").to_owned(),
                e["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    assert_accepted(
        env.iter().map(|(name, _)| name.clone()),
        "serve",
        "the deployment",
    );
    let value = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .expect(name)
    };
    let container_port = |name: &str| {
        container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no port {name}"))
    };
    assert_eq!(container_port("grpc"), port(&value("CLIENTELE_LISTEN")));
    assert_eq!(
        container_port("metrics"),
        port(&value("CLIENTELE_METRICS_LISTEN"))
    );
    // Readiness follows gRPC health; liveness is the metrics listener's /live.
    assert_eq!(
        container["readinessProbe"]["grpc"]["port"].as_u64(),
        Some(container_port("grpc"))
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/live");
    assert_eq!(
        container["livenessProbe"]["httpGet"]["port"].as_u64(),
        Some(container_port("metrics"))
    );
    // The pod outlives the server's shutdown timeout.
    let shutdown: u64 = value("CLIENTELE_SHUTDOWN_TIMEOUT")
        .trim_end_matches('s')
        .parse()
        .expect("seconds");
    assert!(
        pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("grace")
            > shutdown
    );
    // The Dockerfile's user.
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(10001));

    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    let service = kind("Service");
    assert_eq!(&service["spec"]["selector"], labels);
    for target in service["spec"]["ports"].as_array().expect("ports") {
        container_port(target["targetPort"].as_str().expect("a named target port"));
    }
    assert_eq!(
        &kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        labels
    );
}

#[test]
fn the_dockerfile_exposes_the_ports_and_sets_only_variables_the_server_reads() {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
            .expect("Dockerfile");
    let exposed: BTreeSet<u64> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("EXPOSE "))
        .flat_map(|ports| {
            ports
                .split_whitespace()
                .map(|p| p.parse::<u64>().expect("a port"))
        })
        .collect();
    // The ENV instruction, continued over lines.
    let env_block: String = dockerfile
        .split("\nENV ")
        .nth(1)
        .expect("ENV")
        .lines()
        .take_while(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    let variables: Vec<(String, String)> = env_block
        .split_whitespace()
        .filter(|word| *word != "\\")
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    assert_accepted(
        variables.iter().map(|(name, _)| name.clone()),
        "serve",
        "the Dockerfile",
    );
    for name in ["CLIENTELE_LISTEN", "CLIENTELE_METRICS_LISTEN"] {
        let (_, address) = variables.iter().find(|(n, _)| n == name).expect(name);
        assert!(
            exposed.contains(&port(address)),
            "{name} {address} is not exposed: {exposed:?}"
        );
    }
    assert!(dockerfile.contains("USER 10001:10001"));
}
