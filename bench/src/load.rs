//! Closed-loop HTTP/1.1 load: N keep-alive connections, each sending its next request as soon as
//! the previous answer is read, for a warm-up and then a measured window. Bounded by time.
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{header, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::pulse::{own_cpu_time, Pulse};

/// Latency samples in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    sorted: Vec<u64>,
}

impl Latencies {
    pub fn from_micros(mut samples: Vec<u64>) -> Latencies {
        samples.sort_unstable();
        Latencies { sorted: samples }
    }

    pub fn from_durations(samples: impl IntoIterator<Item = Duration>) -> Latencies {
        Latencies::from_micros(samples.into_iter().map(|d| d.as_micros() as u64).collect())
    }

    pub fn merged<'a>(all: impl IntoIterator<Item = &'a Latencies>) -> Latencies {
        Latencies::from_micros(all.into_iter().flat_map(|l| l.sorted.iter().copied()).collect())
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `q` quantile (0..=1) in milliseconds (nearest rank).
    pub fn ms(&self, q: f64) -> f64 {
        if self.sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.sorted.len() as f64).ceil() as usize).clamp(1, self.sorted.len());
        self.sorted[rank - 1] as f64 / 1000.0
    }

    pub fn summary(&self) -> Value {
        json!({
            "samples": self.len(),
            "p50_ms": round3(self.ms(0.50)),
            "p90_ms": round3(self.ms(0.90)),
            "p99_ms": round3(self.ms(0.99)),
            "max_ms": round3(self.ms(1.0)),
        })
    }
}

pub fn round3(value: f64) -> f64 {
    if value.is_finite() {
        (value * 1000.0).round() / 1000.0
    } else {
        value
    }
}

/// One closed-loop run against one path.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub path: String,
    pub connections: usize,
    pub seconds: f64,
    pub requests: usize,
    /// Connection or protocol failures.
    pub errors: usize,
    /// Answers with another status than 200, or a body without the expected marker.
    pub unexpected: usize,
    pub latencies: Latencies,
    /// Server CPU time per measured request.
    pub server_cpu_us_per_request: f64,
    /// Share of the measured window's wall time × cores that the server used (0..=1).
    pub server_cpu_share: f64,
    /// The same for this load generator.
    pub client_cpu_share: f64,
    /// Share of the machine's CPU time used by neither (other builds, the host taking it: steal).
    pub other_cpu_share: f64,
    pub steal_share: f64,
    pub loadavg_before: String,
}

impl Throughput {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "connections": self.connections,
            "measured_seconds": round3(self.seconds),
            "requests": self.requests,
            "rps": self.rps().round(),
            "errors": self.errors,
            "unexpected_answers": self.unexpected,
            "latency": self.latencies.summary(),
            "p50_ms": round3(self.latencies.ms(0.5)),
            "p99_ms": round3(self.latencies.ms(0.99)),
            "server_cpu_us_per_request": self.server_cpu_us_per_request.round(),
            "server_cpu_share": round3(self.server_cpu_share),
            "loadgen_cpu_share": round3(self.client_cpu_share),
            "other_cpu_share": round3(self.other_cpu_share),
            "steal_share": round3(self.steal_share),
            "loadavg_before": self.loadavg_before,
        })
    }
}

pub struct Target<'a> {
    pub pulse: &'a Pulse,
    pub path: &'a str,
    pub cookie: Option<String>,
    /// A byte string every good answer's body contains.
    pub expect: Option<&'static str>,
}

struct ConnectionResult {
    samples: Vec<u64>,
    errors: usize,
    unexpected: usize,
}

pub async fn closed_loop(target: Target<'_>, connections: usize, warmup: Duration, measure: Duration) -> Throughput {
    let loadavg_before = crate::pulse::loadavg();
    let started = Instant::now();
    let measure_from = started + warmup;
    let stop_at = measure_from + measure;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let addr = target.pulse.addr;
        let path = target.path.to_owned();
        let cookie = target.cookie.clone();
        let expect = target.expect;
        tasks.push(tokio::spawn(async move {
            one_connection(addr, path, cookie, expect, measure_from, stop_at).await
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let (server_before, client_before, at_before) = (target.pulse.cpu_time(), own_cpu_time(), Instant::now());
    let machine_before = MachineTicks::read();
    tokio::time::sleep_until(stop_at.into()).await;
    let (server_after, client_after, at_after) = (target.pulse.cpu_time(), own_cpu_time(), Instant::now());
    let machine = MachineTicks::read().since(&machine_before);

    let mut samples = Vec::new();
    let (mut errors, mut unexpected) = (0, 0);
    for task in tasks {
        match task.await {
            Ok(result) => {
                samples.extend(result.samples);
                errors += result.errors;
                unexpected += result.unexpected;
            }
            Err(_) => errors += 1,
        }
    }
    let requests = samples.len();
    let wall = (at_after - at_before).as_secs_f64();
    let capacity = wall * crate::pulse::nproc() as f64;
    let server_cpu = (server_after - server_before).as_secs_f64();
    let client_cpu = (client_after - client_before).as_secs_f64();
    Throughput {
        path: target.path.to_owned(),
        connections,
        seconds: measure.as_secs_f64(),
        requests,
        errors,
        unexpected,
        latencies: Latencies::from_micros(samples),
        server_cpu_us_per_request: if requests > 0 {
            server_cpu * 1e6 / requests as f64
        } else {
            f64::NAN
        },
        server_cpu_share: server_cpu / capacity,
        client_cpu_share: client_cpu / capacity,
        other_cpu_share: (machine.busy_share() - (server_cpu + client_cpu) / capacity).max(0.0),
        steal_share: machine.steal_share(),
        loadavg_before,
    }
}

/// Sends requests back to back on one keep-alive connection until `stop_at`; reconnects after a
/// failure. Records the requests that started inside the measured window.
async fn one_connection(
    addr: SocketAddr,
    path: String,
    cookie: Option<String>,
    expect: Option<&'static str>,
    measure_from: Instant,
    stop_at: Instant,
) -> ConnectionResult {
    let mut result = ConnectionResult {
        samples: Vec::with_capacity(1 << 14),
        errors: 0,
        unexpected: 0,
    };
    let host = addr.to_string();
    let expect = expect.map(str::as_bytes);
    'connect: while Instant::now() < stop_at {
        let mut sender = match connect(addr).await {
            Ok(sender) => sender,
            Err(_) => {
                result.errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        loop {
            let sent = Instant::now();
            if sent >= stop_at {
                break 'connect;
            }
            let mut request = Request::get(path.as_str()).header(header::HOST, host.as_str());
            if let Some(cookie) = &cookie {
                request = request.header(header::COOKIE, cookie.as_str());
            }
            let Ok(request) = request.body(Empty::<Bytes>::new()) else {
                result.errors += 1;
                break 'connect;
            };
            let answered = async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            }
            .await;
            let elapsed = sent.elapsed();
            let measured = sent >= measure_from;
            match answered {
                Ok((status, body)) => {
                    if !measured {
                        continue;
                    }
                    result.samples.push(elapsed.as_micros() as u64);
                    let good = status == StatusCode::OK && expect.is_none_or(|marker| contains(&body, marker));
                    if !good {
                        result.unexpected += 1;
                    }
                }
                Err(_) => {
                    if measured {
                        result.errors += 1;
                    }
                    continue 'connect;
                }
            }
        }
    }
    result
}

async fn connect(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// The machine-wide CPU counters of /proc/stat's `cpu` line, in ticks.
#[derive(Debug, Clone, Copy, Default)]
struct MachineTicks {
    busy: u64,
    steal: u64,
    total: u64,
}

impl MachineTicks {
    fn read() -> MachineTicks {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = stat.lines().find(|line| line.starts_with("cpu ")) else {
            return MachineTicks::default();
        };
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        let total: u64 = v.iter().sum();
        MachineTicks {
            busy: total - at(3) - at(4) - at(7),
            steal: at(7),
            total,
        }
    }

    fn since(&self, earlier: &MachineTicks) -> MachineTicks {
        MachineTicks {
            busy: self.busy.saturating_sub(earlier.busy),
            steal: self.steal.saturating_sub(earlier.steal),
            total: self.total.saturating_sub(earlier.total),
        }
    }

    fn busy_share(&self) -> f64 {
        self.busy as f64 / self.total.max(1) as f64
    }

    fn steal_share(&self) -> f64 {
        self.steal as f64 / self.total.max(1) as f64
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}
