//! `pulse-bench`: measures Pulse's sign-in layer against the same binary's own ceiling, in one run
//! on one machine, and writes the figures as JSON. `scripts/bench` builds Pulse and runs this.
//!
//! This process is the load generator and the OpenID provider; Pulse runs as a separate child
//! process on loopback. Every loop is bounded in count and in time.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod bundle;
mod load;
mod op;
mod pulse;
mod sso;

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};

use crate::{
    load::{closed_loop, round3, Latencies, Target, Throughput},
    op::{CodeGrantExpiry, TestOp},
    pulse::Pulse,
    sso::{Browser, SignIn},
};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// The whole run may not take longer than this, whatever happens.
const RUN_LIMIT: Duration = Duration::from_secs(15 * 60);

const USAGE: &str = "\
pulse-bench --pulse-bin PATH --site-root DIR [options]

  --pulse-bin PATH        the release `pulse` binary
  --site-root DIR         its site (pkg/pulse.wasm, .js, .css)
  --names-wasm PATH       the same wasm before wasm-opt (with names), for twiggy
  --results PATH          JSON output (default bench/results.json)
  --log PATH              Pulse's output (default bench/out/pulse.log)
  --connections N         throughput phases (default 64)
  --warmup SECS           before each throughput window (default 2)
  --duration SECS         each throughput window (default 10)
  --rounds N              rounds of session check + login page between ceilings (default 2)
  --callback-logins N     sequential sign-ins for the callback cost (default 300)
  --storm-logins N        login storm sign-ins (default 1000)
  --storm-clients N       login storm concurrency (default 100)
  --refresh-sessions N    refresh storm sessions (default 200)
  --refresh-fanout N      concurrent requests per session (default 8)
  --refresh-delay-ms N    the provider's time to answer a refresh grant (default 20)
";

#[derive(Debug, Clone)]
struct Args {
    pulse_bin: PathBuf,
    site_root: PathBuf,
    names_wasm: Option<PathBuf>,
    results: PathBuf,
    log: PathBuf,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    rounds: usize,
    callback_logins: usize,
    storm_logins: usize,
    storm_clients: usize,
    refresh_sessions: usize,
    refresh_fanout: usize,
    refresh_delay: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        pulse_bin: PathBuf::new(),
        site_root: PathBuf::new(),
        names_wasm: None,
        results: PathBuf::from("bench/results.json"),
        log: PathBuf::from("bench/out/pulse.log"),
        connections: 64,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(10),
        rounds: 2,
        callback_logins: 300,
        storm_logins: 1000,
        storm_clients: 100,
        refresh_sessions: 200,
        refresh_fanout: 8,
        refresh_delay: Duration::from_millis(20),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--pulse-bin" => args.pulse_bin = PathBuf::from(&value),
            "--site-root" => args.site_root = PathBuf::from(&value),
            "--names-wasm" => args.names_wasm = Some(PathBuf::from(&value)),
            "--results" => args.results = PathBuf::from(&value),
            "--log" => args.log = PathBuf::from(&value),
            "--connections" => args.connections = number()?.clamp(1, 1024) as usize,
            "--warmup" => args.warmup = Duration::from_secs(number()?.min(60)),
            "--duration" => args.duration = Duration::from_secs(number()?.clamp(1, 120)),
            "--rounds" => args.rounds = number()?.clamp(1, 10) as usize,
            "--callback-logins" => args.callback_logins = number()?.clamp(1, 10_000) as usize,
            "--storm-logins" => args.storm_logins = number()?.clamp(1, 100_000) as usize,
            "--storm-clients" => args.storm_clients = number()?.clamp(1, 1000) as usize,
            "--refresh-sessions" => args.refresh_sessions = number()?.clamp(1, 2000) as usize,
            "--refresh-fanout" => args.refresh_fanout = number()?.clamp(1, 64) as usize,
            "--refresh-delay-ms" => args.refresh_delay = Duration::from_millis(number()?.min(5000)),
            _ => return Err(format!("unknown option {flag}\n\n{USAGE}")),
        }
    }
    if args.pulse_bin.as_os_str().is_empty() || args.site_root.as_os_str().is_empty() {
        return Err(format!("--pulse-bin and --site-root are required\n\n{USAGE}"));
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match tokio::time::timeout(RUN_LIMIT, run(args)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("pulse-bench: {err}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("pulse-bench: gave up after {} s", RUN_LIMIT.as_secs());
            ExitCode::FAILURE
        }
    }
}

fn say(message: &str) {
    eprintln!("--> {message}");
}

async fn run(args: Args) -> Result<(), AnyError> {
    let loadavg_before = pulse::loadavg();
    let started_unix = unix_now();
    if let Some(dir) = args.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Refreshed access tokens live an hour: after the storm nothing is due again.
    let op = TestOp::start(args.refresh_delay, 3600).await?;
    let pulse = Pulse::start(&args.pulse_bin, &args.site_root, &op, &args.log).await?;
    say(&format!(
        "Pulse (pid {}) at {}, test OpenID provider at {}",
        pulse.pid,
        pulse.base,
        op.issuer()
    ));
    let outcome = phases(&args, &op, &pulse).await;
    let peak_rss_kib = pulse.peak_rss_kib();
    let rss_end_kib = pulse.rss_kib();
    pulse.stop().await;
    let mut results = outcome?;

    say("Bundle sizes");
    let bundle = bundle::measure(&args.site_root, args.names_wasm.as_deref());
    let loadavg_after = pulse::loadavg();
    results.insert("bundle".into(), bundle.to_json());
    results.insert("memory".into(), json!({ "peak_rss_kib": peak_rss_kib, "rss_at_end_kib": rss_end_kib, "source": "/proc/<pid>/status VmHWM, read after phases 1-6" }));
    results.insert(
        "machine".into(),
        json!({
            "nproc": pulse::nproc(),
            "cpu_model": pulse::cpu_model(),
            "loadavg_before": loadavg_before,
            "loadavg_after": loadavg_after,
        }),
    );
    results.insert(
        "run".into(),
        json!({
            "started_unix": started_unix.round() as i64,
            "seconds": round3(unix_now() - started_unix),
            "git": git_describe(),
            "settings": {
                "connections": args.connections,
                "warmup_s": args.warmup.as_secs(),
                "duration_s": args.duration.as_secs(),
                "rounds": args.rounds,
                "callback_logins": args.callback_logins,
                "storm_logins": args.storm_logins,
                "storm_clients": args.storm_clients,
                "refresh_sessions": args.refresh_sessions,
                "refresh_fanout": args.refresh_fanout,
                "op_refresh_delay_ms": args.refresh_delay.as_millis() as u64,
            },
        }),
    );
    let results = Value::Object(results);
    if let Some(dir) = args.results.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.results, serde_json::to_string_pretty(&results)? + "\n")?;
    println!("{}", table(&results, &bundle));
    say(&format!("wrote {}", args.results.display()));
    Ok(())
}

async fn phases(args: &Args, op: &TestOp, pulse: &Pulse) -> Result<serde_json::Map<String, Value>, AnyError> {
    let mut results = serde_json::Map::new();
    wait_healthy(pulse).await?;

    // One local sign-in for the session check; sign-in posts are rate limited per IP.
    let mut admin = Browser::new(&pulse.base)?;
    admin.sign_in_locally(pulse::ADMIN_USER, pulse::ADMIN_PASS).await?;
    if !admin.signed_in().await? {
        return Err("the local sign-in did not leave a session".into());
    }
    let admin_cookie = admin
        .cookie_header()
        .ok_or("no session cookie after the local sign-in")?;

    let throughput = |path: &'static str, cookie: Option<String>, expect: Option<&'static str>| {
        let target = Target {
            pulse,
            path,
            cookie,
            expect,
        };
        closed_loop(target, args.connections, args.warmup, args.duration)
    };
    // Rounds of ceiling → session check → login page → ceiling …: each phase is compared with
    // the ceilings measured right before and right after it, so drift of the shared machine
    // during the run (other builds, the host) cancels out as far as it can.
    say("1. Ceiling: GET /api/health");
    let mut ceilings = vec![throughput("/api/health", None, Some("\"ok\"")).await];
    say(&format!("   {:.0} rps", ceilings[0].rps()));
    let (mut sessions, mut login_pages) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        say(&format!(
            "2. Session check: GET /api/security/status, signed in (round {round}/{})",
            args.rounds
        ));
        let session = throughput(
            "/api/security/status",
            Some(admin_cookie.clone()),
            Some("\"authenticated\":true"),
        )
        .await;
        say(&format!("   {:.0} rps", session.rps()));
        sessions.push(session);
        say(&format!(
            "3. Login page: GET /login, SSR (round {round}/{})",
            args.rounds
        ));
        let login_page = throughput("/login", None, Some("</html>")).await;
        say(&format!("   {:.0} rps", login_page.rps()));
        login_pages.push(login_page);
        say("1. Ceiling again");
        let ceiling = throughput("/api/health", None, Some("\"ok\"")).await;
        say(&format!("   {:.0} rps", ceiling.rps()));
        ceilings.push(ceiling);
    }
    // Diagnostics, no goal: where the session check's and the login page's time goes.
    say("d1. Diagnostic: GET /api/security/status, signed out (no session to load)");
    let status_anonymous = throughput("/api/security/status", None, Some("\"authenticated\":false")).await;
    say(&format!("   {:.0} rps", status_anonymous.rps()));
    say("d2. Diagnostic: GET /pkg/pulse.css (every middleware, no database)");
    let static_file = throughput("/pkg/pulse.css", None, None).await;
    say(&format!("   {:.0} rps", static_file.rps()));
    say("1. Ceiling again (for the diagnostics)");
    let last_ceiling = throughput("/api/health", None, Some("\"ok\"")).await;
    say(&format!("   {:.0} rps", last_ceiling.rps()));

    let ceiling_rps = mean(ceilings.iter().map(Throughput::rps));
    let ceiling_cpu = mean(ceilings.iter().map(|c| c.server_cpu_us_per_request));
    results.insert(
        "ceiling".into(),
        json!({
            "rps": ceiling_rps.round(),
            "p50_ms": round3(Latencies::merged(ceilings.iter().map(|c| &c.latencies)).ms(0.5)),
            "p99_ms": round3(Latencies::merged(ceilings.iter().map(|c| &c.latencies)).ms(0.99)),
            "server_cpu_us_per_request": ceiling_cpu.round(),
            "note": "mean over the runs between which phases 2 and 3 ran; each phase's ratio uses the runs right before and after it",
            "runs": ceilings.iter().map(Throughput::to_json).collect::<Vec<_>>(),
        }),
    );
    results.insert("session_check".into(), compared(&sessions, &ceilings, 0.75));
    results.insert("login_page".into(), compared(&login_pages, &ceilings, 0.5));
    let diagnostic = |t: &Throughput, what: &str| {
        let around = (ceilings[ceilings.len() - 1].rps() + last_ceiling.rps()) / 2.0;
        let mut value = t.to_json();
        value["what"] = json!(what);
        value["ratio_to_ceiling"] = json!(round3(t.rps() / around));
        value["cpu_ratio"] = json!(round3(ceiling_cpu / t.server_cpu_us_per_request));
        value
    };
    results.insert(
        "diagnostics".into(),
        json!({
            "status_signed_out": diagnostic(&status_anonymous, "the session check's handler without a session cookie: no session load, the same two settings/accounts queries"),
            "static_css": diagnostic(&static_file, "a static file (ServeDir: open, stat and read on the blocking pool) through every middleware layer, no database; its latency shows whether responses written in two parts stall on Nagle + delayed ACK"),
            "ceiling_after": last_ceiling.to_json(),
        }),
    );

    say(&format!(
        "4. Callback cost: {} sequential SSO sign-ins",
        args.callback_logins
    ));
    results.insert("callback".into(), callback_cost(args, op, pulse).await?);

    say(&format!(
        "5. Login storm: {} SSO sign-ins from {} clients",
        args.storm_logins, args.storm_clients
    ));
    let (storm_json, logins_per_s) = login_storm(args, op, pulse).await?;
    results.insert("login_storm".into(), storm_json);

    say(&format!(
        "6. Refresh storm: {} sessions expiring together, {} concurrent requests each",
        args.refresh_sessions, args.refresh_fanout
    ));
    results.insert(
        "refresh_storm".into(),
        refresh_storm(args, op, pulse, logins_per_s).await?,
    );

    // The admin's session must have survived everything.
    results.insert(
        "admin_session_survived".into(),
        json!(admin.signed_in().await.unwrap_or(false)),
    );
    Ok(results)
}

async fn wait_healthy(pulse: &Pulse) -> Result<(), AnyError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{}/api/health", pulse.base)).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("Pulse never answered /api/health".into())
}

/// Sequential sign-ins after a warm-up (discovery and JWKS cached): the callback's latency seen
/// by the client, minus the time the provider spent on that sign-in's token request.
async fn callback_cost(args: &Args, op: &TestOp, pulse: &Pulse) -> Result<Value, AnyError> {
    let mut browser = Browser::new(&pulse.base)?;
    for _ in 0..20 {
        browser.clear_cookies();
        browser.sign_in(op).await?;
    }
    let fetches_before = op.fetches();
    let userinfo_before = op.userinfo_time();
    let cpu_before = pulse.cpu_time();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut sign_ins, mut errors, mut first_error) = (Vec::new(), 0usize, None);
    for _ in 0..args.callback_logins {
        if Instant::now() > deadline {
            break;
        }
        browser.clear_cookies();
        match browser.sign_in(op).await {
            Ok(sign_in) => sign_ins.push(sign_in),
            Err(err) => {
                errors += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    let cpu = pulse.cpu_time() - cpu_before;
    let fetches = op.fetches();
    let client = Latencies::from_durations(sign_ins.iter().map(|s| s.callback));
    let provider = Latencies::from_durations(sign_ins.iter().map(|s| s.op_token));
    let net = Latencies::from_durations(sign_ins.iter().map(SignIn::callback_net));
    let total = Latencies::from_durations(sign_ins.iter().map(|s| s.total));
    let net_p50 = net.ms(0.5);
    Ok(json!({
        "sign_ins": sign_ins.len(),
        "errors": errors,
        "first_error": first_error,
        "method": "per sign-in: client-side latency of GET /api/oidc/callback minus the provider's own time in its token endpoint for that code; discovery and JWKS cached (fetch counts below)",
        "net_p50_ms": round3(net_p50),
        "net_p99_ms": round3(net.ms(0.99)),
        "net": net.summary(),
        "client_side_callback": client.summary(),
        "provider_token_endpoint": provider.summary(),
        "difference_of_medians_ms": round3(client.ms(0.5) - provider.ms(0.5)),
        "whole_sign_in": total.summary(),
        "server_cpu_ms_per_sign_in": round3(cpu.as_secs_f64() * 1000.0 / sign_ins.len().max(1) as f64),
        "provider_fetches_during_phase": {
            "discovery": fetches.discovery - fetches_before.discovery,
            "jwks": fetches.jwks - fetches_before.jwks,
            "userinfo": fetches.userinfo - fetches_before.userinfo,
            "userinfo_ms_total": round3((op.userinfo_time() - userinfo_before).as_secs_f64() * 1000.0),
        },
        "goal_net_p50_ms_max": 2.0,
        "met": net_p50 < 2.0 && errors == 0,
    }))
}

/// Many browsers signing in at once, each with its own jar, emptied before every sign-in.
async fn login_storm(args: &Args, op: &TestOp, pulse: &Pulse) -> Result<(Value, f64), AnyError> {
    let next = Arc::new(AtomicUsize::new(0));
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let time_limit = Duration::from_secs(120);
    let started = Instant::now();
    let cpu_before = pulse.cpu_time();
    let mut clients = Vec::new();
    for _ in 0..args.storm_clients {
        let (next, errors, op) = (next.clone(), errors.clone(), op.clone());
        let mut browser = Browser::new(&pulse.base)?;
        let total = args.storm_logins;
        clients.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total && started.elapsed() < time_limit {
                browser.clear_cookies();
                match browser.sign_in(&op).await {
                    Ok(sign_in) => done.push(sign_in),
                    Err(err) => errors.lock().unwrap_or_else(|p| p.into_inner()).push(err),
                }
            }
            done
        }));
    }
    let mut sign_ins: Vec<SignIn> = Vec::new();
    for client in clients {
        sign_ins.extend(client.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = pulse.cpu_time() - cpu_before;
    let errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|p| p.into_inner()));
    let not_attempted = args.storm_logins.saturating_sub(sign_ins.len() + errors.len());
    let logins_per_s = sign_ins.len() as f64 / elapsed;
    let failures = errors.len() + not_attempted;
    let mut distinct_errors: Vec<String> = errors.iter().take(1000).cloned().collect();
    distinct_errors.sort();
    distinct_errors.dedup();
    distinct_errors.truncate(5);
    Ok((
        json!({
            "attempted": args.storm_logins,
            "clients": args.storm_clients,
            "completed": sign_ins.len(),
            "errors": failures,
            "not_attempted_time_limit": not_attempted,
            "error_samples": distinct_errors,
            "seconds": round3(elapsed),
            "logins_per_s": round3(logins_per_s),
            "whole_sign_in": Latencies::from_durations(sign_ins.iter().map(|s| s.total)).summary(),
            "callback_net_under_load": Latencies::from_durations(sign_ins.iter().map(SignIn::callback_net)).summary(),
            "server_cpu_ms_per_sign_in": round3(cpu.as_secs_f64() * 1000.0 / sign_ins.len().max(1) as f64),
            "goal_errors": 0,
            "met": failures == 0,
        }),
        logins_per_s,
    ))
}

/// Signs in `refresh_sessions` browsers whose access tokens all expire at the same second, waits
/// past it, then sends `refresh_fanout` requests per session all at once.
async fn refresh_storm(args: &Args, op: &TestOp, pulse: &Pulse, logins_per_s: f64) -> Result<Value, AnyError> {
    let sessions = args.refresh_sessions;
    // Leave twice the time the sign-ins should take at the storm's rate, at least 5 s.
    let expected = sessions as f64 / logins_per_s.max(1.0);
    let lead = (2.0 * expected + 3.0).clamp(5.0, 60.0);
    let expire_at = unix_now() + lead;
    op.set_code_grant_expiry(CodeGrantExpiry::At(expire_at));

    let next = Arc::new(AtomicUsize::new(0));
    let mut makers = Vec::new();
    for _ in 0..sessions.min(50) {
        let (next, op, base) = (next.clone(), op.clone(), pulse.base.clone());
        makers.push(tokio::spawn(async move {
            let mut made = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < sessions {
                let result = match Browser::new(&base) {
                    Ok(mut browser) => browser.sign_in(&op).await.map(|_| browser),
                    Err(err) => Err(err),
                };
                made.push((result, unix_now()));
            }
            made
        }));
    }
    let (mut browsers, mut sign_in_errors, mut late) = (Vec::new(), Vec::new(), 0usize);
    for maker in makers {
        for (result, at) in maker.await.unwrap_or_default() {
            match result {
                Ok(browser) => {
                    if at > expire_at - 1.0 {
                        late += 1;
                    }
                    browsers.push(browser);
                }
                Err(err) => sign_in_errors.push(err),
            }
        }
    }
    op.set_code_grant_expiry(CodeGrantExpiry::Seconds(3600));
    let made_in = lead - (expire_at - unix_now());

    // Past the expiry (a whole second of slack for Pulse's second-granular timestamps).
    let wait = (expire_at + 1.5 - unix_now()).max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;

    let grants_before = op.refresh_counts();
    let total_requests = browsers.len() * args.refresh_fanout;
    let barrier = Arc::new(tokio::sync::Barrier::new(total_requests));
    let started = Instant::now();
    let mut requests = Vec::with_capacity(total_requests);
    for (index, browser) in browsers.iter().enumerate() {
        for _ in 0..args.refresh_fanout {
            let mut tab = browser.tab();
            let barrier = barrier.clone();
            requests.push(tokio::spawn(async move {
                barrier.wait().await;
                let sent = Instant::now();
                let outcome = tab.signed_in().await;
                (index, outcome, sent.elapsed(), Instant::now(), tab.cookie_value())
            }));
        }
    }
    let mut answers = Vec::with_capacity(total_requests);
    for request in requests {
        if let Ok(answer) = request.await {
            answers.push(answer);
        }
    }
    let storm_seconds = started.elapsed().as_secs_f64();
    // Like a browser, each session keeps the cookie of the answer that arrived last.
    answers.sort_by_key(|(_, _, _, finished, _)| *finished);
    for (index, _, _, _, cookie) in &answers {
        browsers[*index].set_cookie_value(cookie.clone());
    }
    let (mut signed_in, mut signed_out, mut failed) = (0usize, 0usize, 0usize);
    for (_, outcome, _, _, _) in &answers {
        match outcome {
            Ok(true) => signed_in += 1,
            Ok(false) => signed_out += 1,
            Err(_) => failed += 1,
        }
    }
    let latencies = Latencies::from_durations(answers.iter().map(|(_, _, elapsed, _, _)| *elapsed));
    // Quiet for a moment so late grants are counted, then the tally.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grants = op.refresh_counts().since(&grants_before);

    let mut lost = 0usize;
    for browser in &mut browsers {
        if !browser.signed_in().await.unwrap_or(false) {
            lost += 1;
        }
    }
    let lost_total = lost + sign_in_errors.len();
    Ok(json!({
        "sessions": browsers.len(),
        "sign_in_errors": sign_in_errors.len(),
        "sign_ins_seconds": round3(made_in),
        "expiry_lead_s": round3(lead),
        "sessions_signed_in_within_1s_of_expiry": late,
        "requests": answers.len(),
        "requests_signed_in": signed_in,
        "requests_signed_out": signed_out,
        "requests_failed": failed,
        "storm_seconds": round3(storm_seconds),
        "request_latency": latencies.summary(),
        "refresh_grants": grants.total(),
        "refresh_grant_outcomes": {
            "issued": grants.issued,
            "reuse_detected": grants.reuse_detected,
            "family_revoked": grants.family_revoked,
            "unknown": grants.unknown,
        },
        "sessions_lost": lost_total,
        "goal_refresh_grants": sessions,
        "goal_sessions_lost": 0,
        "met": grants.total() == sessions && grants.issued == sessions && lost_total == 0 && sign_in_errors.is_empty(),
    }))
}

fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, count) = values
        .into_iter()
        .fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// A phase measured in rounds against the ceilings around each round (`ceilings[i]` before
/// round i, `ceilings[i + 1]` after it): the rps ratio (the goal) and, as a cross-check that the
/// load generator's share and the machine's drift cannot move, the ratio of server CPU time per
/// request (ceiling's / phase's).
fn compared(rounds: &[Throughput], ceilings: &[Throughput], goal: f64) -> Value {
    let ratios: Vec<f64> = rounds
        .iter()
        .enumerate()
        .map(|(i, run)| run.rps() / ((ceilings[i].rps() + ceilings[i + 1].rps()) / 2.0))
        .collect();
    let cpu_ratios: Vec<f64> = rounds
        .iter()
        .enumerate()
        .map(|(i, run)| {
            ((ceilings[i].server_cpu_us_per_request + ceilings[i + 1].server_cpu_us_per_request) / 2.0)
                / run.server_cpu_us_per_request
        })
        .collect();
    let ratio = mean(ratios.iter().copied());
    let merged = Latencies::merged(rounds.iter().map(|r| &r.latencies));
    let failures: usize = rounds.iter().map(|r| r.errors + r.unexpected).sum();
    json!({
        "path": rounds.first().map(|r| r.path.clone()),
        "connections": rounds.first().map(|r| r.connections),
        "rps": mean(rounds.iter().map(Throughput::rps)).round(),
        "p50_ms": round3(merged.ms(0.5)),
        "p99_ms": round3(merged.ms(0.99)),
        "latency": merged.summary(),
        "errors_and_unexpected_answers": failures,
        "server_cpu_us_per_request": mean(rounds.iter().map(|r| r.server_cpu_us_per_request)).round(),
        "ratio_to_ceiling": round3(ratio),
        "ratio_per_round": ratios.iter().map(|r| round3(*r)).collect::<Vec<_>>(),
        "cpu_ratio": round3(mean(cpu_ratios.iter().copied())),
        "goal_ratio_min": goal,
        "met": ratio >= goal && failures == 0,
        "rounds": rounds.iter().map(Throughput::to_json).collect::<Vec<_>>(),
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn git_describe() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

// ---------------------------------------------------------------------------------------------
// The table

fn table(results: &Value, bundle: &bundle::Bundle) -> String {
    let f = |v: &Value| v.as_f64().map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into());
    let n = |v: &Value| v.as_f64().map(|x| format!("{x:.0}")).unwrap_or_else(|| "—".into());
    let met = |v: &Value| match v.as_bool() {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "—",
    };
    let kb = |bytes: Option<u64>| {
        bytes
            .map(|b| format!("{:.1} KB", b as f64 / 1000.0))
            .unwrap_or_else(|| "—".into())
    };
    let r = results;
    let mut rows: Vec<[String; 4]> = Vec::new();
    let c = &r["ceiling"];
    let runs: Vec<String> = c["runs"]
        .as_array()
        .map(|runs| runs.iter().map(|run| n(&run["rps"])).collect())
        .unwrap_or_default();
    rows.push([
        "1 Ceiling GET /api/health".into(),
        format!(
            "{} rps (runs {}), p50 {} ms, p99 {} ms, {} µs CPU/req",
            n(&c["rps"]),
            runs.join(" / "),
            f(&c["p50_ms"]),
            f(&c["p99_ms"]),
            n(&c["server_cpu_us_per_request"])
        ),
        "—".into(),
        "—".into(),
    ]);
    let s = &r["session_check"];
    rows.push([
        "2 Session check GET /api/security/status".into(),
        format!(
            "{} rps, p50 {} ms, p99 {} ms, ratio {} (CPU ratio {}), {} µs CPU/req",
            n(&s["rps"]),
            f(&s["p50_ms"]),
            f(&s["p99_ms"]),
            f(&s["ratio_to_ceiling"]),
            f(&s["cpu_ratio"]),
            n(&s["server_cpu_us_per_request"])
        ),
        "ratio ≥ 0.75".into(),
        met(&s["met"]).into(),
    ]);
    let l = &r["login_page"];
    rows.push([
        "3 Login page GET /login".into(),
        format!(
            "{} rps, p50 {} ms, p99 {} ms, ratio {} (CPU ratio {}), {} µs CPU/req",
            n(&l["rps"]),
            f(&l["p50_ms"]),
            f(&l["p99_ms"]),
            f(&l["ratio_to_ceiling"]),
            f(&l["cpu_ratio"]),
            n(&l["server_cpu_us_per_request"])
        ),
        "ratio ≥ 0.5".into(),
        met(&l["met"]).into(),
    ]);
    for (key, label) in [
        ("status_signed_out", "d1 GET /api/security/status, signed out"),
        ("static_css", "d2 GET /pkg/pulse.css"),
    ] {
        let d = &r["diagnostics"][key];
        rows.push([
            label.into(),
            format!(
                "{} rps, p50 {} ms, p99 {} ms, ratio {}, {} µs CPU/req",
                n(&d["rps"]),
                f(&d["p50_ms"]),
                f(&d["p99_ms"]),
                f(&d["ratio_to_ceiling"]),
                n(&d["server_cpu_us_per_request"])
            ),
            "(diagnostic)".into(),
            "—".into(),
        ]);
    }
    let cb = &r["callback"];
    rows.push([
        "4 Callback cost (server side)".into(),
        format!(
            "p50 {} ms, p99 {} ms (client {} / provider {} ms p50)",
            f(&cb["net_p50_ms"]),
            f(&cb["net_p99_ms"]),
            f(&cb["client_side_callback"]["p50_ms"]),
            f(&cb["provider_token_endpoint"]["p50_ms"])
        ),
        "p50 < 2 ms".into(),
        met(&cb["met"]).into(),
    ]);
    let ls = &r["login_storm"];
    rows.push([
        "5 Login storm".into(),
        format!(
            "{} of {} done, {} errors, {} logins/s",
            n(&ls["completed"]),
            n(&ls["attempted"]),
            n(&ls["errors"]),
            f(&ls["logins_per_s"])
        ),
        "0 errors".into(),
        met(&ls["met"]).into(),
    ]);
    let rs = &r["refresh_storm"];
    rows.push([
        "6 Refresh storm".into(),
        format!(
            "{} grants for {} sessions ({} reuse detected), {} sessions lost",
            n(&rs["refresh_grants"]),
            n(&rs["sessions"]),
            n(&rs["refresh_grant_outcomes"]["reuse_detected"]),
            n(&rs["sessions_lost"])
        ),
        format!("{} grants, 0 lost", n(&rs["goal_refresh_grants"])),
        met(&rs["met"]).into(),
    ]);
    rows.push([
        "7 Bundle wasm+js (css)".into(),
        format!(
            "raw {}, gzip {}, brotli {} (css {} / {} / {}); lazy settings chunks ({}) brotli {}",
            kb(Some(bundle.wasm.raw + bundle.js.raw)),
            kb(bundle.wasm.gzip.zip(bundle.js.gzip).map(|(a, b)| a + b)),
            kb(bundle.wasm_js_brotli()),
            kb(Some(bundle.css.raw)),
            kb(bundle.css.gzip),
            kb(bundle.css.brotli),
            bundle.lazy_chunk_count,
            kb(bundle.lazy_chunks.brotli)
        ),
        "brotli ≤ 200 KB".into(),
        met(&r["bundle"]["met"]).into(),
    ]);
    rows.push([
        "8 Peak RSS (VmHWM)".into(),
        r["memory"]["peak_rss_kib"]
            .as_u64()
            .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_else(|| "—".into()),
        "—".into(),
        "—".into(),
    ]);
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|row| row[i].chars().count()).max().unwrap_or(0).max(4))
        .collect();
    let line = |cells: [&str; 4]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}", w = *w))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut out = vec![
        format!(
            "\nPulse benchmark — {} × {}, load average before {} / after {}",
            r["machine"]["nproc"],
            r["machine"]["cpu_model"].as_str().unwrap_or("?"),
            r["machine"]["loadavg_before"].as_str().unwrap_or("?"),
            r["machine"]["loadavg_after"].as_str().unwrap_or("?")
        ),
        line(["measure", "result", "goal", "met"]),
        line(["---", "---", "---", "---"]),
    ];
    for row in &rows {
        out.push(line([&row[0], &row[1], &row[2], &row[3]]));
    }
    if let Some(top) = &bundle.twiggy {
        let crates: Vec<String> = top["by_crate"]
            .as_array()
            .map(|crates| {
                crates
                    .iter()
                    .take(10)
                    .map(|c| format!("{} {}%", c["crate"].as_str().unwrap_or("?"), c["percent"]))
                    .collect()
            })
            .unwrap_or_default();
        out.push(format!(
            "\nLargest wasm contributors by crate (share of code+data before wasm-opt): {}",
            crates.join(", ")
        ));
    }
    for note in &bundle.notes {
        out.push(format!("note: {note}"));
    }
    out.join("\n")
}
