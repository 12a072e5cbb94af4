//! The operator binary, run as a process against the test cluster.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use super::*;

/// A running `operator run`, killed on drop.
#[derive(Debug)]
pub struct Operator {
    pub admin_port: u16,
    pub identity: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Operator {
    /// Starts the operator watching `namespace`, with `args` added.
    pub fn start(cluster: &Cluster, namespace: &str, identity: &str, args: &[String]) -> Self {
        let admin_port = free_port();
        let log = cluster.work.join(format!("operator-{namespace}-{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_operator"))
            .args(["--log-format", "plain", "run", "--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .args(["--lease-namespace", SYSTEM_NAMESPACE, "--lease-name", &format!("lease-{namespace}")])
            .args(["--identity", identity, "--namespace", namespace])
            .args(args)
            .env("KUBECONFIG", &cluster.operator_kubeconfig)
            .env("RUST_LOG", "info,kube=warn,finagent_operator::adapters=debug")
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("the operator starts");
        let operator = Self { admin_port, identity: identity.to_owned(), child: Some(child), log };
        wait_for(Duration::from_secs(20), "the operator's admin port", || operator.scrape());
        operator
    }

    /// The operator's `/metrics`, or `None` when it does not answer.
    /// The operator's metrics page; `None` when it cannot be read (the process is gone). A busy
    /// machine (every cluster test at once on two cores) can delay one answer: three tries.
    pub fn scrape(&self) -> Option<String> {
        let once = || -> Option<String> {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n\r\n").ok()?;
            let mut text = String::new();
            stream.read_to_string(&mut text).ok()?;
            text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
        };
        (0..3).find_map(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            once()
        })
    }

    /// The sum of the samples of `name` whose labels contain every `labels` pair.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let Some(text) = self.scrape() else { return f64::NAN };
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| line.split(['{', ' ']).next() == Some(name))
            .filter(|line| labels.iter().all(|(key, value)| line.contains(&format!("{key}=\"{value}\""))))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Kubernetes API requests so far, by verb.
    pub fn requests(&self) -> Vec<(String, f64)> {
        let text = self.scrape().unwrap_or_default();
        text.lines()
            .filter(|line| line.starts_with("finagent_operator_kubernetes_requests_total{"))
            .filter_map(|line| {
                let verb = line.split("verb=\"").nth(1)?.split('"').next()?.to_owned();
                Some((verb, line.rsplit(' ').next()?.parse().ok()?))
            })
            .collect()
    }

    pub fn leads(&self) -> bool {
        self.metric("finagent_operator_leader", &[]) == 1.0
    }

    pub fn reconciles(&self) -> f64 {
        self.metric("finagent_operator_reconciles_total", &[])
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal that does not end the process (`STOP`, `CONT`).
    pub fn pause(&self, signal: &str) {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Sends a signal (`KILL`, `TERM`) and waits for the process to end.
    pub fn signal(&mut self, signal: &str) {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- the last lines of operator {} ({:?}):", self.identity, self.log);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
