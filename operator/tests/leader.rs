//! Leader election against an API server that accepts connections and never answers: every round
//! ends within its timeout, so a hung API server cannot keep a leader leading past its deadline.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use finagent_operator::leader::{LeaderElector, LeaseError, LeaseTimings};

#[tokio::test]
async fn a_silent_api_server_times_a_lease_round_out() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = silent.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let config = kube::Config::new(format!("http://{address}").parse().expect("uri"));
    let client = kube::Client::try_from(config).expect("client");
    let timings = LeaseTimings {
        duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        renew_period: Duration::from_secs(5),
        retry_period: Duration::from_secs(1),
    };
    let elector = LeaderElector::new(client, "finagent-system", "finagent-operator", "pod-a", timings);
    let started = Instant::now();
    let round = tokio::time::timeout(Duration::from_secs(10), elector.try_hold()).await;
    let took = started.elapsed();
    assert!(matches!(round, Ok(Err(LeaseError::Timeout))), "{round:?}");
    assert!(took < Duration::from_secs(3), "a round took {took:?}");
}
