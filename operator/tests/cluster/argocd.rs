//! A real Argo CD for the `cluster_argocd_*` tests: the application controller, repo server and
//! API server that `scripts/argocd.sh` starts beside the control plane (built from Argo CD's Go
//! modules), our health check merged into its `argocd-cm`, and a `git daemon` on loopback serving
//! the repositories the tests commit to.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::{Cluster, wait_for};

/// Where Argo CD is, from the environment `scripts/test.sh` sets.
#[derive(Debug)]
pub struct ArgoCd {
    pub cli: PathBuf,
    pub server: String,
    pub git_root: PathBuf,
    pub git_url: String,
    pub controller_metrics: String,
}

/// The namespace Argo CD runs in and keeps its Applications in.
pub const NAMESPACE: &str = "argocd";

/// Argo CD, or `None` (the test is skipped) when none was started, unless the suite requires it.
pub fn argocd() -> Option<ArgoCd> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let found = (|| {
        Some(ArgoCd {
            cli: PathBuf::from(var("FINAGENT_TEST_ARGOCD")?),
            server: var("FINAGENT_TEST_ARGOCD_SERVER")?,
            git_root: PathBuf::from(var("FINAGENT_TEST_ARGOCD_GIT_ROOT")?),
            git_url: var("FINAGENT_TEST_ARGOCD_GIT_URL")?,
            controller_metrics: var("FINAGENT_TEST_ARGOCD_CONTROLLER_METRICS")?,
        })
    })();
    if found.is_none() {
        assert!(
            std::env::var_os("FINAGENT_TEST_REQUIRE_ARGOCD").is_none(),
            "FINAGENT_TEST_REQUIRE_ARGOCD is set but Argo CD was not started"
        );
        eprintln!("no Argo CD (FINAGENT_TEST_ARGOCD); skipping");
    }
    found
}

/// A Git repository that git daemon serves, with a working tree the test commits to.
#[derive(Debug)]
pub struct GitRepo {
    pub dir: PathBuf,
    pub url: String,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Platform Team")
        .env("GIT_AUTHOR_EMAIL", "platform@example.test")
        .env("GIT_COMMITTER_NAME", "Platform Team")
        .env("GIT_COMMITTER_EMAIL", "platform@example.test")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl GitRepo {
    /// A new repository `name` (one left by an earlier run is replaced).
    pub fn new(argocd: &ArgoCd, name: &str) -> Self {
        let dir = argocd.git_root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("repository folder");
        git(&dir, &["init", "--quiet", "--initial-branch=main"]);
        Self { dir, url: format!("{}/{name}", argocd.git_url) }
    }

    /// Writes `file` and commits it; returns the commit's hash.
    pub fn commit(&self, file: &str, content: &str, message: &str) -> String {
        let path = self.dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("folder");
        std::fs::write(&path, content).expect("writes");
        git(&self.dir, &["add", file]);
        git(&self.dir, &["commit", "--quiet", "-m", message]);
        git(&self.dir, &["rev-parse", "HEAD"])
    }
}

/// A FinancialAgent as Git holds it: YAML, as a user writes it.
pub fn manifest(namespace: &str, name: &str, spec: &Value, labels: &Value) -> String {
    let document = json!({"apiVersion": "finagent.io/v1alpha1", "kind": "FinancialAgent",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": {"finagent.example/owner": "platform-team"}},
        "spec": spec});
    serde_yaml::to_string(&document).expect("yaml")
}

impl ArgoCd {
    /// Creates (or replaces) the Application `name`: `path` of `repo` into `namespace`, with
    /// automated sync, pruning and self-heal, synced server-side as docs/gitops-argocd.md advises.
    pub fn application(&self, cluster: &Cluster, name: &str, repo: &GitRepo, path: &str, namespace: &str) {
        self.delete_application(cluster, name);
        let application = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "project": "default",
                "source": {"repoURL": repo.url, "targetRevision": "main", "path": path},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                "syncPolicy": {
                    "automated": {"prune": true, "selfHeal": true},
                    "syncOptions": ["ServerSideApply=true"],
                    "retry": {"limit": 2, "backoff": {"duration": "2s", "factor": 2, "maxDuration": "10s"}},
                },
            },
        });
        cluster.apply_ok(&application.to_string());
    }

    fn delete_application(&self, cluster: &Cluster, name: &str) {
        // Not cascading: the test's namespace goes with the test.
        let _ = cluster.kubectl(&["-n", NAMESPACE, "delete", "application", name, "--ignore-not-found", "--wait=true"]);
    }

    /// The Application as JSON.
    pub fn app(&self, cluster: &Cluster, name: &str) -> Value {
        cluster.get(NAMESPACE, "application", name).expect("the Application exists")
    }

    /// Asks Argo CD to compare with Git now (what a Git webhook does), rather than at its next
    /// resync.
    pub fn refresh(&self, cluster: &Cluster, name: &str) {
        cluster.kubectl_ok(&[
            "-n",
            NAMESPACE,
            "annotate",
            "--overwrite",
            "application",
            name,
            "argocd.argoproj.io/refresh=normal",
        ]);
    }

    /// Waits until the Application has synced `revision` (any, when `None`) and is in `sync` and
    /// `health`; returns it.
    pub fn wait(
        &self,
        cluster: &Cluster,
        name: &str,
        timeout: Duration,
        revision: Option<&str>,
        sync: &str,
        health: &str,
    ) -> Value {
        wait_for(timeout, &format!("Application {name} {sync}/{health} at {revision:?}"), || {
            let app = cluster.get(NAMESPACE, "application", name)?;
            let status = &app["status"];
            let at = status["sync"]["revision"].as_str().unwrap_or_default();
            (status["sync"]["status"] == sync
                && status["health"]["status"] == health
                && revision.is_none_or(|revision| revision == at))
            .then_some(app)
        })
    }

    /// The health Argo CD gives one of the Application's resources: (status, message).
    pub fn resource_health(app: &Value, kind: &str, name: &str) -> Option<(String, String)> {
        let resources = app["status"]["resources"].as_array()?;
        let resource = resources.iter().find(|resource| resource["kind"] == kind && resource["name"] == name)?;
        let health = &resource["health"];
        Some((
            health["status"].as_str().unwrap_or_default().to_owned(),
            health["message"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// Syncs the controller has run for `name` so far (its `argocd_app_sync_total` metric).
    pub fn syncs(&self, name: &str) -> f64 {
        let text = http_get(&self.controller_metrics, "/metrics").unwrap_or_default();
        text.lines()
            .filter(|line| line.starts_with("argocd_app_sync_total{") && line.contains(&format!("name=\"{name}\"")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `argocd <args>` against the API server (plaintext on loopback; it runs without auth).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let home = self.git_root.parent().expect("run folder").join("cli-home");
        let output = Command::new(&self.cli)
            .args(args)
            .args(["--server", &self.server, "--plaintext", "--auth-token", "unused"])
            .env("HOME", home)
            .env("ARGOCD_BINARY_NAME", "argocd")
            .output()
            .expect("the argocd CLI runs");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }
}

/// A plain HTTP/1.0 GET on loopback (so the body is not chunked); the body.
fn http_get(address: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}
